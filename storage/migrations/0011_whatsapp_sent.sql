-- neonize's ledger of sent messages (issue 13): our message id → the id WhatsApp gave it, one
-- row per message a company's session handed to WhatsApp. neonize cannot pass our id to
-- WhatsApp, so WhatsApp cannot tell a resend from a new message; the session records each
-- send here the moment WhatsApp took it, and answers a resend of a recorded id without sending.
-- In PostgreSQL (AIADMIN_WHATSAPP_STORE=postgres) it moves with the salon: a session started
-- on another process or machine sees what the previous owner sent.
CREATE TABLE whatsapp_sent (
  company_id INTEGER NOT NULL REFERENCES companies (id),
  message_id VARCHAR(255) NOT NULL,
  wa_id VARCHAR(255) NOT NULL,
  sent_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (company_id, message_id)
);
-- A session's newest sends (its filter of its own echoes), and retention's oldest first.
CREATE INDEX idx_whatsapp_sent_company_recent ON whatsapp_sent (company_id, sent_at DESC);
CREATE INDEX idx_whatsapp_sent_at ON whatsapp_sent (sent_at, company_id, message_id);
