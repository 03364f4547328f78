"""Tests of actors.yclients: the REST client, its rate limiter, the marketplace helpers."""
