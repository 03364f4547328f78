-- Retention prunes assistant_token_usage by day, oldest first (storage/_retention.py): without
-- an index led by the day, each hourly batch scanned every salon-day kept (issue 15).
CREATE INDEX IF NOT EXISTS idx_assistant_token_usage_day ON assistant_token_usage (day, company_id);
