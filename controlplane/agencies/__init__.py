"""Agencies: the organisations that ask for sandboxes, keyed by organisation number."""
