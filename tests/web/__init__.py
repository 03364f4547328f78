"""Tests for the web package."""
