#!/usr/bin/env bash
# Run once by the postgres image's entrypoint, on an empty data directory: one role and one
# database per service, so no service can read another's tables.
set -euo pipefail

create() {
  local role="$1" database="$2" password="$3"
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres \
    --set role="${role}" --set database="${database}" --set password="${password}" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
SQL
}

create pacs_api pacs "${PACS_API_DB_PASSWORD}"
create pacs_bridge pacs_bridge "${PACS_BRIDGE_DB_PASSWORD}"
create pacs_exporter pacs_exporter "${PACS_EXPORTER_DB_PASSWORD}"
