-- Versions of each company's API key and webhook secret. The YClients integration derives
-- both from the server secret, the salon id and this version (actors/yclients/_keys.py), so it
-- can send them to YClients again without storing them; only their hashes are stored.
-- A re-issue bumps the version. Versions are not secret.
ALTER TABLE companies
  ADD COLUMN api_key_version INTEGER NOT NULL DEFAULT 0 CHECK (api_key_version >= 0),
  ADD COLUMN webhook_secret_version INTEGER NOT NULL DEFAULT 0
    CHECK (webhook_secret_version >= 0);
