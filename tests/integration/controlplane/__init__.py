"""Integration tests of the control plane on SQLite and a real PostgreSQL."""
