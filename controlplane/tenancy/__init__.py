"""Tenants as control-plane records (the top-level ``tenants`` package is the shared vocabulary)."""
