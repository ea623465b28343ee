"""Outgoing mail: the durable outbox, the SMTP worker, the email templates."""
