"""Kalkan's case server: stores hashes (never images) and hands back a case number and a PIN."""
