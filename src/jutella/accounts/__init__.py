"""Staff accounts, roles, passwords, sessions, two-factor sign-in, throttling
and the audit log."""
