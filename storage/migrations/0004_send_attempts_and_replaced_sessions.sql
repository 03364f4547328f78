-- How many times each outbound message was handed to the WhatsApp session to send (counted
-- before each hand-over, so a crash right after it still shows). Sends are at least once: a
-- send whose outcome was unknown (a session host died, a command timed out, a crash between
-- the send and the status write) is retried with the same WhatsApp message id, so a row with
-- attempts > 1 is one that may have reached the client twice if WhatsApp did not deduplicate.
ALTER TABLE messages
  ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0);

-- The company's WhatsApp session was opened on another device (whatsmeow's StreamReplaced):
-- it stays stopped, across restarts too, until the admin takes it back (request-qr), so two
-- devices never take the session from each other in a loop.
ALTER TABLE companies
  ADD COLUMN whatsapp_replaced BOOLEAN NOT NULL DEFAULT false;
