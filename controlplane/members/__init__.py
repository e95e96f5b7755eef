"""Tenant members: the people in a tenant's identity groups (t-<slug>-admins / -members)."""
