-- Retention (issue 17): finished inbox and outbox rows and old messages are deleted in bounded
-- batches, oldest first, once they are older than AIADMIN_RETENTION_DAYS. These indexes let
-- each batch find its rows without scanning the tables (pending rows are never deleted).
CREATE INDEX idx_webhook_events_finished ON webhook_events (received_at, id)
  WHERE status IN ('done', 'dead');
CREATE INDEX idx_outbox_finished ON outbox (updated_at, id)
  WHERE status IN ('delivered', 'failed');
CREATE INDEX idx_messages_created ON messages (created_at, id);
-- The newest outbox item of a company and kind is kept (its key is re-enqueued to make sure
-- it went out); this finds whether a newer one exists.
CREATE INDEX idx_outbox_latest ON outbox (kind, (COALESCE(company_id, 0)), id);
