"""Sandlåda control plane: people-facing state and decisions behind a FastAPI service."""
