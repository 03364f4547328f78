"""End-to-end tests: the real server on loopback, driven by headless Chromium."""
