# syntax=docker/dockerfile:1
# The Sandlåda image: one image for the control plane (`sandlada serve`, `sandlada db upgrade`)
# and the operators (`python -m operators`); the Helm chart picks the command.
#
#   docker build -t registry.example.se/sandlada/sandlada:0.1.0 .
#   docker push registry.example.se/sandlada/sandlada:0.1.0
#
# (or `podman build`/`buildah bud` with the same arguments). Not built in this repository's CI:
# the development machines have no container engine; see helm/sandlada/README.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a wheel of the sandlada distribution and all its dependencies in a virtualenv ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/sandlada
WORKDIR /src
# Dependencies first, keyed by pyproject.toml only, so a code change reuses this layer.
COPY pyproject.toml README.md ./
RUN mkdir -p controlplane operators tenants infra \
    && touch controlplane/__init__.py operators/__init__.py tenants/__init__.py infra/__init__.py \
    && /opt/sandlada/bin/pip install . \
    && /opt/sandlada/bin/pip uninstall --yes sandlada
COPY controlplane ./controlplane
COPY operators ./operators
COPY tenants ./tenants
COPY infra ./infra
# A regular (non-editable) install: the runtime stage copies only the virtualenv.
RUN /opt/sandlada/bin/pip install --no-deps . \
    && /opt/sandlada/bin/python -c "import controlplane.app, operators.tenant, tenants.crd"

# --- runtime: the virtualenv on a slim Python, as a numeric non-root user ---
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/sandlada/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/sandlada /opt/sandlada
# Alembic reads controlplane/alembic.ini relative to the package; nothing else is written at
# run time, so the chart can mount the root filesystem read-only (with an emptyDir on /tmp).
RUN groupadd --system --gid 10001 sandlada \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin sandlada
WORKDIR /tmp
# Numeric, so Pod Security "restricted" (runAsNonRoot) can verify it without a passwd lookup.
USER 10001:10001
EXPOSE 8000 8080
ENTRYPOINT ["sandlada"]
CMD ["serve", "--host=0.0.0.0", "--port=8000"]
