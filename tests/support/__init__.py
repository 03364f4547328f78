"""Reusable test helpers: temporary PostgreSQL databases, Redis prefixes, a fake wall clock,
a fault-injecting TCP proxy. Shared by every test folder that needs real storage."""
