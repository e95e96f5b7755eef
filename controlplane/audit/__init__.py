"""Audit trail: a hash-chained record of every state change."""
