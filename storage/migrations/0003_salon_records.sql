-- Our copy of each salon's YClients records (visits), refreshed from record webhooks.
-- A row is never deleted: a cancelled visit keeps its row with deleted = true.
-- changed_at is YClients' last_change_date: an older change never overwrites a newer one.
CREATE TABLE salon_records (
  company_id INTEGER NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
  record_id BIGINT NOT NULL CHECK (record_id > 0),
  client_id BIGINT,
  client_phone VARCHAR(32),
  client_name VARCHAR(255),
  staff_id BIGINT,
  services JSONB NOT NULL DEFAULT '[]'::jsonb,
  starts_at TIMESTAMPTZ,
  seance_length INTEGER,
  attendance SMALLINT,
  deleted BOOLEAN NOT NULL DEFAULT false,
  api_id VARCHAR(255),
  changed_at TIMESTAMPTZ,
  raw JSONB NOT NULL DEFAULT '{}'::jsonb,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (company_id, record_id)
);
CREATE INDEX idx_salon_records_company_starts
  ON salon_records (company_id, starts_at) WHERE NOT deleted;
CREATE INDEX idx_salon_records_client_phone
  ON salon_records (company_id, client_phone) WHERE client_phone IS NOT NULL;
