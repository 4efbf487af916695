# syntax=docker/dockerfile:1
# pacs-exporter: the mesh exporter (REST API and workers). Build from the repository root:
#   docker build -f deploy/docker/exporter.Dockerfile -t pacs-cloud/exporter:dev .
# Production: pin the base image by digest too (python:3.11.14-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: a venv from uv.lock, only this service's locked dependencies -------------------------
FROM ${PYTHON_IMAGE} AS build
# uv from PyPI (the same version scripts/install-test-deps.sh installs), not another registry.
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# The workspace's manifests first: the dependency layer is rebuilt only when they change.
COPY pyproject.toml uv.lock ./
COPY libs/pacs-common/pyproject.toml libs/pacs-common/
COPY services/api/pyproject.toml services/api/
COPY services/cli/pyproject.toml services/cli/
COPY services/dimse-bridge/pyproject.toml services/dimse-bridge/
COPY services/exporter/pyproject.toml services/exporter/
RUN uv sync --frozen --no-dev --no-install-workspace --package pacs-exporter
COPY libs/pacs-common/ libs/pacs-common/
COPY services/exporter/ services/exporter/
RUN uv sync --frozen --no-dev --no-editable --package pacs-exporter

# --- runtime: the venv only, as an unprivileged user ---------------------------------------------
# The wheels (numpy, scipy, scikit-image, fast-simplification, psycopg[binary]) bundle their
# libraries; what they need beyond that (libc, libstdc++, libgcc_s, libz) is in the slim image.
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 pacs \
    && useradd --system --uid 10001 --gid pacs --home-dir /var/lib/pacs --create-home \
       --shell /usr/sbin/nologin pacs
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PACS_EXPORTER_HOST=0.0.0.0 PACS_EXPORTER_PORT=8081
# Embedded defaults (SQLite, files under ./var/) land in the user's home; Kubernetes sets
# PACS_EXPORTER_DATABASE_URL and PACS_EXPORTER_STORE_URL instead. Binding 0.0.0.0 is refused
# until PACS_EXPORTER_ALLOW_UNAUTHENTICATED_NETWORK=true says something protects the port.
WORKDIR /var/lib/pacs
USER 10001:10001
EXPOSE 8081
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=4)"]
CMD ["pacs-exporter", "serve"]
