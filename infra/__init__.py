"""Local development launchers for the real components Sandlåda runs against.

Nothing here is part of the product: it builds and starts a local Kubernetes control plane
with kwok-simulated GPU nodes, Keycloak, PostgreSQL and MLflow so that `make dev` and the tests
work against the real things. It never imports `controlplane` or `operators`.
"""
