# AI Admin: one `aiadmin serve` process per container (compose.yaml runs three behind nginx).
# Not exercised in CI (see README, "Production"); scripts/cluster.py is the tested equivalent.
FROM python:3.11-slim

# libmagic1: neonize (WhatsApp) needs it at import.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmagic1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY metrics ./metrics
COPY runtime ./runtime
COPY actors ./actors
COPY storage ./storage
COPY web ./web
RUN pip install --no-cache-dir . && rm -rf /app/build

# Never root; WhatsApp's file store (AIADMIN_WHATSAPP_STORE=files, single process only) would
# live in /sessions — a cluster keeps credentials in PostgreSQL instead.
RUN useradd --system --uid 10001 --home /app aiadmin \
    && mkdir /sessions && chown aiadmin /sessions
USER aiadmin
ENV AIADMIN_HOST=0.0.0.0 \
    PORT=3000 \
    WHATSAPP_SESSIONS_PATH=/sessions \
    PYTHONUNBUFFERED=1
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/health', timeout=2)"
# SIGTERM (docker stop) is a graceful stop within AIADMIN_SHUTDOWN_GRACE (10 s): keep
# `stop_grace_period` above it.
CMD ["aiadmin", "serve"]
