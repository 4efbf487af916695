# syntax=docker/dockerfile:1
# pacs-dimse-bridge: the DIMSE bridge (DICOM port 11112, status API 8082). Build from the repository root:
#   docker build -f deploy/docker/dimse-bridge.Dockerfile -t pacs-cloud/dimse-bridge:dev .
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
RUN uv sync --frozen --no-dev --no-install-workspace --package pacs-dimse-bridge
COPY libs/pacs-common/ libs/pacs-common/
COPY services/dimse-bridge/ services/dimse-bridge/
RUN uv sync --frozen --no-dev --no-editable --package pacs-dimse-bridge

# --- runtime: the venv only, as an unprivileged user ---------------------------------------------
# pynetdicom, pydicom and psycopg[binary] need nothing beyond the slim image (DICOM TLS uses
# Python's ssl module and the image's OpenSSL).
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 pacs \
    && useradd --system --uid 10001 --gid pacs --home-dir /var/lib/pacs --create-home \
       --shell /usr/sbin/nologin pacs
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PACS_BRIDGE_HOST=0.0.0.0 PACS_BRIDGE_PORT=11112
# The allow-list (PACS_BRIDGE_ALLOW or the file named by PACS_BRIDGE_CONFIG_FILE) must be
# given: the bridge refuses to start without one. The status API stays on loopback unless
# PACS_BRIDGE_ADMIN_HOST and PACS_BRIDGE_ADMIN_ALLOW_UNAUTHENTICATED_NETWORK=true are set.
WORKDIR /var/lib/pacs
USER 10001:10001
EXPOSE 11112 8082
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8082/healthz', timeout=4)"]
CMD ["pacs-bridge", "serve"]
