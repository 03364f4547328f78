-- The version of a company's web credentials: its connect link and its company JWTs. A JWT
-- carries the version it was issued at and is refused once the version has moved on.
-- Re-issuing the connect URL and uninstalling the app bump it. Versions are not secret.
ALTER TABLE companies
  ADD COLUMN credentials_version INTEGER NOT NULL DEFAULT 0 CHECK (credentials_version >= 0);
