-- How many times each outbound message was handed to WhatsApp. Sends are at least once: a
-- send whose outcome was unknown (a session host died, a command timed out, a crash between
-- the send and the status write) is retried with the same WhatsApp message id, so a row with
-- attempts > 1 is one that may have reached the client twice if WhatsApp did not deduplicate.
ALTER TABLE messages
  ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0);
