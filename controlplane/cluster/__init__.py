"""Kubernetes storage of the control plane: Tenant resources and the GPU nodes' capacity."""
