-- The assistant (issue 10): one conversation per (salon, client phone), and what the synced
-- catalog must tell it (service descriptions, who does each service, the salon's own words
-- for a service, categories, the salon's opening hours).

-- One client's chat with a salon's assistant. state is the assistant's own JSON (flow,
-- details, offered options, pending confirmation), opaque to storage. version grows by one on
-- every write: a save names the version it read, so of two writers only one wins.
CREATE TABLE conversations (
  company_id INTEGER NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
  phone VARCHAR(15) NOT NULL CHECK (phone ~ '^[0-9]{5,15}$'),
  mode VARCHAR(16) NOT NULL DEFAULT 'assistant'
    CHECK (mode IN ('assistant', 'handoff', 'opted_out')),
  state JSONB NOT NULL DEFAULT '{}'::jsonb,
  version INTEGER NOT NULL DEFAULT 1 CHECK (version > 0),
  client_name VARCHAR(255),
  mode_until TIMESTAMPTZ,
  needs_person BOOLEAN NOT NULL DEFAULT false,
  last_message_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (company_id, phone)
);
-- The newest-first list per company (keyset pages on the same expression).
CREATE INDEX idx_conversations_recent
  ON conversations (company_id, (COALESCE(last_message_at, updated_at)) DESC, phone DESC);
-- expire_idle: only conversations that still hold a state.
CREATE INDEX idx_conversations_idle
  ON conversations (updated_at) WHERE state <> '{}'::jsonb;

-- Services: YClients' comment (what the service is), the masters who do it (empty: unknown),
-- and the salon's own words for it ("шеллак").
ALTER TABLE salon_services
  ADD COLUMN description TEXT,
  ADD COLUMN staff_ids INTEGER[] NOT NULL DEFAULT '{}',
  ADD COLUMN synonyms TEXT[] NOT NULL DEFAULT '{}';

-- Service categories as last synced (never deleted: missing ones become inactive).
CREATE TABLE salon_categories (
  company_id INTEGER NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
  category_id INTEGER NOT NULL,
  title VARCHAR(255) NOT NULL,
  active BOOLEAN NOT NULL DEFAULT true,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (company_id, category_id)
);

-- The salon's opening hours: its own words (YClients' schedule, "Ежедневно 10:00–21:00") and,
-- when they name one daily span, that span in the salon's local time.
ALTER TABLE companies
  ADD COLUMN schedule VARCHAR(500),
  ADD COLUMN opens_at TIME,
  ADD COLUMN closes_at TIME;
