-- The assistant's language model per salon (issue 15): whether the salon uses it, which model
-- (NULL: the node's AIADMIN_LLM_MODEL) and its daily token cap. No row: the salon never chose,
-- and understands with the rules.
CREATE TABLE assistant_model_settings (
  company_id INTEGER PRIMARY KEY REFERENCES companies (id) ON DELETE CASCADE,
  enabled BOOLEAN NOT NULL,
  model VARCHAR(100),
  daily_token_cap BIGINT NOT NULL CHECK (daily_token_cap > 0),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Tokens the salon's model calls spent, per salon and local day (the salon's time zone): one
-- upsert per call adds to the day's row. One row per salon per day that used the model.
CREATE TABLE assistant_token_usage (
  company_id INTEGER NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
  day DATE NOT NULL,
  prompt_tokens BIGINT NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
  completion_tokens BIGINT NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
  calls INTEGER NOT NULL DEFAULT 0 CHECK (calls >= 0),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (company_id, day)
);
