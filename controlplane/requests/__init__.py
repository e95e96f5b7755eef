"""Sandbox requests: submission by an agency and the approval workflow."""
