-- The salon page's transcript reads one client's audit events (what the assistant and the
-- salon did in that chat: AuditLog.for_phone, issue 16). Events about a client carry its phone
-- as the JSON string data->'phone'; the rest (registration, sync, ...) stay out of this index.
CREATE INDEX IF NOT EXISTS idx_marketplace_events_phone
  ON marketplace_events (company_id, (data->'phone'), created_at DESC, id DESC)
  WHERE data->'phone' IS NOT NULL;

-- One client's messages (the transcript, and each listed chat's last line: latest_by_peer)
-- without walking the salon's other chats.
CREATE INDEX IF NOT EXISTS idx_messages_peer_recent
  ON messages (company_id, peer_phone, created_at DESC, id DESC);
