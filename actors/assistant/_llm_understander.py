"""Understanding by a language model, with the rules as the fallback for every message.

``LlmUnderstander`` implements the same ``Understander`` as the rules: it sends the message
(``_llm_prompt``), reads the function call's JSON (``_llm_client``), checks it strictly and
resolves its names with the rules' matchers (``_llm_schema``). On any failure — timeout,
connection error, 4xx / 5xx (429 included), malformed JSON, a schema-invalid or unresolvable
command, a text longer than ``MAX_MODEL_TEXT`` (never sent) — that message is read by the
fallback (the rules) and
``aiadmin_llm_fallbacks_total{reason}`` counts it. The model only produces commands: the
replies, the confirmation step and every YClients check stay where they are (``decide``).

``ModelUnderstanders`` picks the understanding of each turn: the model the salon's
``ModelPolicy`` names (``None``: the rules), and reports each call's tokens to it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from metrics import MetricsRegistry

from ._catalog import AssistantCatalog
from ._commands import Command, TurnContext, Understander
from ._llm_client import LlmClient, LlmError
from ._llm_prompt import messages
from ._llm_schema import FUNCTION_NAME, PARAMETERS, InvalidOutput, Unresolvable, check, to_commands
from ._model_policy import ModelPolicy

__all__ = ["MAX_MODEL_TEXT", "LlmMetrics", "LlmUnderstander", "ModelUnderstanders"]

log = logging.getLogger(__name__)

#: A turn's text longer than this (a burst may join 20 messages of 5,000 characters) is read
#: by the rules and never sent: anyone who writes to the salon could otherwise spend its
#: daily token cap in a few messages.
MAX_MODEL_TEXT = 2000


@dataclass
class LlmMetrics:
    """What the model understanding counts (registered once per node)."""

    registry: MetricsRegistry

    def __post_init__(self) -> None:
        r = self.registry
        self.fallbacks = r.counter(
            "aiadmin_llm_fallbacks_total",
            "Messages the rules read because the model call failed or its answer was unusable",
            ("reason",),
        )
        self.calls = r.counter("aiadmin_llm_calls_total", "Model calls that gave usable commands")
        self.usage_estimated = r.counter(
            "aiadmin_llm_usage_estimated_total",
            "Model answers without a usable usage, whose tokens were estimated from characters",
        )


class LlmUnderstander:
    """An ``Understander`` backed by one model for one salon; ``fallback`` reads every
    message the model could not."""

    def __init__(
        self,
        client: LlmClient,
        model: str,
        fallback: Understander,
        metrics: LlmMetrics,
        *,
        company_id: int = 0,
        policy: ModelPolicy | None = None,
    ) -> None:
        self._client = client
        self._model = model
        self._fallback = fallback
        self._metrics = metrics
        self._company_id = company_id
        self._policy = policy

    async def understand(
        self,
        text: str,
        context: TurnContext,
        catalog: AssistantCatalog,
        now: dt.datetime,
    ) -> tuple[Command, ...]:
        """The model's commands for ``text``, else the fallback's. Never raises."""
        if len(text) > MAX_MODEL_TEXT:
            return await self._fall_back("too_long", text, context, catalog, now)
        try:
            reply = await self._client.call(
                self._model, messages(text, context, catalog, now), FUNCTION_NAME, PARAMETERS
            )
        except LlmError as exc:
            return await self._fall_back(exc.reason, text, context, catalog, now)
        except Exception:  # e.g. JSON nested too deep to parse: the rules still answer
            log.exception("company %s: the model call failed", self._company_id)
            return await self._fall_back("error", text, context, catalog, now)
        if reply.estimated:
            self._metrics.usage_estimated.inc()
        await self._record(reply.prompt_tokens, reply.completion_tokens)
        try:
            commands = to_commands(check(reply.value), text, context, catalog, now)
        except InvalidOutput as exc:
            log.info("company %s: model answer not valid: %s", self._company_id, exc)
            return await self._fall_back("invalid", text, context, catalog, now)
        except Unresolvable as exc:
            log.info("company %s: model answer not resolvable: %s", self._company_id, exc)
            return await self._fall_back("unresolvable", text, context, catalog, now)
        except Exception:  # a bug here must not silence the assistant
            log.exception("company %s: reading the model answer failed", self._company_id)
            return await self._fall_back("error", text, context, catalog, now)
        self._metrics.calls.inc()
        return commands

    async def _fall_back(
        self,
        reason: str,
        text: str,
        context: TurnContext,
        catalog: AssistantCatalog,
        now: dt.datetime,
    ) -> tuple[Command, ...]:
        self._metrics.fallbacks.labels(reason).inc()
        return await self._fallback.understand(text, context, catalog, now)

    async def _record(self, prompt_tokens: int, completion_tokens: int) -> None:
        """The call's tokens to the salon's accounting (which also counts
        ``aiadmin_llm_tokens_total``)."""
        if self._policy is None:
            return
        try:
            await self._policy.record_usage(self._company_id, prompt_tokens, completion_tokens)
        except Exception:  # accounting must not cost the client an answer
            log.exception("company %s: model usage not recorded", self._company_id)


class ModelUnderstanders:
    """The node's model understanding: one client, the salons' policy, the fallback."""

    def __init__(
        self,
        client: LlmClient,
        policy: ModelPolicy,
        metrics: LlmMetrics,
    ) -> None:
        self.client = client
        self.policy = policy
        self.metrics = metrics

    async def for_company(self, company_id: int, fallback: Understander) -> Understander | None:
        """The model understanding of this salon now, or ``None`` for ``fallback`` alone
        (the salon's model is off, or its daily token cap was reached)."""
        try:
            model = await self.policy.choice(company_id)
        except Exception:
            log.exception("company %s: model choice failed; the rules read this turn", company_id)
            self.metrics.fallbacks.labels("policy_error").inc()
            return None
        if not model:
            return None
        return LlmUnderstander(
            self.client, model, fallback, self.metrics, company_id=company_id, policy=self.policy
        )
