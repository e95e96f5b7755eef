"""Notebook servers of tenant members: profiles, launch, list, stop, and quota accounting."""
