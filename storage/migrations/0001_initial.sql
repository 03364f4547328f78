-- AI Admin initial schema. Applied by storage.migrate() in one transaction.
-- companies: the later seed's table (001_...), with the earlier seed's partial indexes;
-- deviation: API keys and webhook secrets are stored as SHA-256 hashes plus a display prefix.

CREATE TABLE companies (
  id SERIAL PRIMARY KEY,
  yclients_id INTEGER UNIQUE NOT NULL CHECK (yclients_id > 0),
  company_id INTEGER,
  title VARCHAR(255),
  phone VARCHAR(20),
  email VARCHAR(255),
  address TEXT,
  timezone VARCHAR(50) NOT NULL DEFAULT 'Europe/Moscow',
  whatsapp_enabled BOOLEAN NOT NULL DEFAULT false,
  whatsapp_connected BOOLEAN NOT NULL DEFAULT false,
  whatsapp_phone VARCHAR(20),
  whatsapp_jid VARCHAR(255),
  whatsapp_connected_at TIMESTAMPTZ,
  connected_at TIMESTAMPTZ,
  ai_enabled BOOLEAN NOT NULL DEFAULT true,
  sync_enabled BOOLEAN NOT NULL DEFAULT true,
  integration_status VARCHAR(50) NOT NULL DEFAULT 'pending',
  status_changed_at TIMESTAMPTZ DEFAULT NOW(),
  last_error TEXT,
  api_key_hash CHAR(64),
  api_key_prefix VARCHAR(16),
  webhook_secret_hash CHAR(64),
  webhook_secret_prefix VARCHAR(16),
  raw_data JSONB,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE INDEX idx_companies_whatsapp_connected
  ON companies (whatsapp_connected) WHERE whatsapp_connected = true;
CREATE INDEX idx_companies_whatsapp_phone
  ON companies (whatsapp_phone) WHERE whatsapp_phone IS NOT NULL;
CREATE INDEX idx_companies_integration_status ON companies (integration_status, id);
CREATE UNIQUE INDEX idx_companies_api_key_hash
  ON companies (api_key_hash) WHERE api_key_hash IS NOT NULL;

-- Audit log: append-only.
CREATE TABLE marketplace_events (
  id BIGSERIAL PRIMARY KEY,
  company_id INTEGER REFERENCES companies (id),
  event_type VARCHAR(255) NOT NULL,
  data JSONB NOT NULL DEFAULT '{}'::jsonb,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_marketplace_events_company ON marketplace_events (company_id, created_at DESC, id DESC);

-- Durable webhook inbox: stored before we answer 2xx, deduplicated, claimed with a lease.
CREATE TABLE webhook_events (
  id BIGSERIAL PRIMARY KEY,
  company_id INTEGER NOT NULL REFERENCES companies (id),
  dedupe_key VARCHAR(255) NOT NULL,
  event_type VARCHAR(255) NOT NULL,
  payload JSONB NOT NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'done', 'failed', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  received_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  claimed_until TIMESTAMPTZ,
  processed_at TIMESTAMPTZ,
  UNIQUE (company_id, dedupe_key)
);
CREATE INDEX idx_webhook_events_due ON webhook_events (next_attempt_at, id)
  WHERE status IN ('pending', 'failed');
CREATE INDEX idx_webhook_events_company_due ON webhook_events (company_id, id)
  WHERE status IN ('pending', 'failed');

-- Durable outbox of outbound calls (YClients callback etc.).
CREATE TABLE outbox (
  id BIGSERIAL PRIMARY KEY,
  kind VARCHAR(255) NOT NULL,
  idempotency_key VARCHAR(255) NOT NULL UNIQUE,
  company_id INTEGER REFERENCES companies (id),
  payload JSONB NOT NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  claimed_until TIMESTAMPTZ,
  last_error TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  delivered_at TIMESTAMPTZ
);
CREATE INDEX idx_outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';

-- WhatsApp messages in and out.
CREATE TABLE messages (
  id BIGSERIAL PRIMARY KEY,
  company_id INTEGER NOT NULL REFERENCES companies (id),
  direction VARCHAR(3) NOT NULL CHECK (direction IN ('in', 'out')),
  wa_message_id VARCHAR(255),
  peer_phone VARCHAR(32) NOT NULL,
  text TEXT NOT NULL,
  status VARCHAR(16) NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  UNIQUE (company_id, wa_message_id)
);
CREATE INDEX idx_messages_company_recent ON messages (company_id, created_at DESC, id DESC);

-- YClients catalog as last synced (for the later sync work).
CREATE TABLE salon_services (
  company_id INTEGER NOT NULL REFERENCES companies (id),
  service_id INTEGER NOT NULL,
  title VARCHAR(255) NOT NULL,
  category_id INTEGER,
  price_min NUMERIC(12, 2),
  price_max NUMERIC(12, 2),
  duration INTEGER,
  active BOOLEAN NOT NULL DEFAULT true,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (company_id, service_id)
);

CREATE TABLE salon_staff (
  company_id INTEGER NOT NULL REFERENCES companies (id),
  staff_id INTEGER NOT NULL,
  name VARCHAR(255) NOT NULL,
  specialization VARCHAR(255),
  bookable BOOLEAN NOT NULL DEFAULT true,
  rating DOUBLE PRECISION,
  active BOOLEAN NOT NULL DEFAULT true,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (company_id, staff_id)
);

CREATE TABLE salon_sync_state (
  company_id INTEGER PRIMARY KEY REFERENCES companies (id),
  last_success_at TIMESTAMPTZ,
  last_error TEXT,
  last_attempt_at TIMESTAMPTZ
);
