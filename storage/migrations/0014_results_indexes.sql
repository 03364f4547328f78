-- The salon page's results (issue 16, storage/_pg_results.py) count one salon's rows of a span
-- of days per source; these indexes let each grouped query read only those rows.
-- Audit events of the counted types in the span:
CREATE INDEX IF NOT EXISTS idx_marketplace_events_company_type
  ON marketplace_events (company_id, event_type, created_at);
-- Whether an outbound message was written by the salon (not an answer of the assistant):
CREATE INDEX IF NOT EXISTS idx_marketplace_events_salon_sent
  ON marketplace_events (company_id, (data->>'message_id'))
  WHERE event_type = 'salon.message_sent';
-- Whether an outbound message was a reminder or review request:
CREATE INDEX IF NOT EXISTS idx_reminders_message
  ON reminders (company_id, message_id) WHERE message_id IS NOT NULL;
-- Reminders sent in the span (a sent row's updated_at is when it was sent):
CREATE INDEX IF NOT EXISTS idx_reminders_sent
  ON reminders (company_id, updated_at) WHERE status = 'sent';
-- Ratings given in the span:
CREATE INDEX IF NOT EXISTS idx_reviews_company_updated ON reviews (company_id, updated_at);

-- Retention (issue 17) deletes audit events older than AIADMIN_AUDIT_RETENTION_DAYS, oldest
-- first, in bounded batches: this lets each batch find them without scanning the table.
CREATE INDEX IF NOT EXISTS idx_marketplace_events_created ON marketplace_events (created_at, id);
