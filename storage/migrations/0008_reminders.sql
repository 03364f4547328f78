-- Reminders before visits and review requests after them (issue 11): the durable schedule,
-- each salon's settings, and clients' ratings.
--
-- reminders: one row per planned message, unique per (company, record, kind, visit_time), so
-- a visit gets at most one message of a kind for one visit time, ever: re-planning updates a
-- row that is still planned and never touches one claimed or sent. A scheduler claims due rows
-- with FOR UPDATE SKIP LOCKED and a lease (claimed_by, claim_until); a claim whose lease ran
-- out is claimable again (a crashed claimer's work). message_id is decided at the first claim
-- and kept afterwards, so a send retried after a crash is deduplicated by the outbound queue.
CREATE TABLE reminders (
  id BIGSERIAL PRIMARY KEY,
  company_id INTEGER NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
  record_id BIGINT NOT NULL CHECK (record_id > 0),
  visit_id BIGINT CHECK (visit_id > 0),
  kind VARCHAR(32) NOT NULL CHECK (kind ~ '^[a-z][a-z_]{0,31}$'),
  visit_time TIMESTAMPTZ NOT NULL,
  due_at TIMESTAMPTZ,
  send_by TIMESTAMPTZ,
  status VARCHAR(16) NOT NULL
    CHECK (status IN ('planned', 'claimed', 'sent', 'skipped', 'dropped')),
  reason VARCHAR(64),
  phone VARCHAR(15) CHECK (phone ~ '^[0-9]{5,15}$'),
  details JSONB NOT NULL DEFAULT '{}'::jsonb,
  message_id VARCHAR(64),
  claimed_by VARCHAR(255),
  claim_until TIMESTAMPTZ,
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  UNIQUE (company_id, record_id, kind, visit_time),
  CHECK (status <> 'planned' OR due_at IS NOT NULL),
  CHECK (status <> 'claimed' OR (claimed_by IS NOT NULL AND claim_until IS NOT NULL))
);
-- What the scheduler reads: due planned rows in order, and leases that run out.
CREATE INDEX idx_reminders_planned ON reminders (due_at, id) WHERE status = 'planned';
CREATE INDEX idx_reminders_claimed ON reminders (claim_until, id) WHERE status = 'claimed';

-- A salon's reminder settings as the JSON form of actors.reminders.ReminderSettings (no row:
-- the defaults).
CREATE TABLE reminder_settings (
  company_id INTEGER PRIMARY KEY REFERENCES companies (id) ON DELETE CASCADE,
  settings JSONB NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Clients' ratings of their visits: one per visit; a later rating replaces the earlier one.
CREATE TABLE reviews (
  company_id INTEGER NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
  record_id BIGINT NOT NULL CHECK (record_id > 0),
  visit_id BIGINT CHECK (visit_id > 0),
  phone VARCHAR(15) NOT NULL CHECK (phone ~ '^[0-9]{5,15}$'),
  rating SMALLINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
  comment VARCHAR(2000),
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (company_id, record_id)
);
-- The salon's attention list: low ratings, newest first.
CREATE INDEX idx_reviews_low ON reviews (company_id, updated_at DESC) WHERE rating <= 3;
