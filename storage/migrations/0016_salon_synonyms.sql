-- The salon's own words for its services (issue 16): "шеллак" for "Маникюр с покрытием
-- гель-лак". Ours, not YClients': kept apart from salon_services (whose synonyms column a
-- catalog sync replaces), so a sync never erases them. One row per (company, service) with
-- words; no row: none. The words are checked by storage/_synonyms.py (at most 20, each 1-60
-- characters of letters, digits, spaces and hyphens, no repeats).
CREATE TABLE salon_synonyms (
  company_id INTEGER NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
  service_id INTEGER NOT NULL CHECK (service_id > 0),
  words TEXT[] NOT NULL CHECK (cardinality(words) BETWEEN 1 AND 20),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (company_id, service_id)
);
