"""Shared vocabulary of Sandlåda: custom resource models, safe names, catalogue and pure builders.

Pure and I/O-free; imported by both `controlplane` and `operators`, imports neither.
"""
