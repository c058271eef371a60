#!/usr/bin/env bash
# Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d): the
# integration ledger gets its own database and user, apart from Airflow's metadata. The password
# comes from LEDGER_DB_PASSWORD (docker-compose.yaml requires it); psql quotes it (:'pw').
set -euo pipefail
: "${LEDGER_DB_PASSWORD:?LEDGER_DB_PASSWORD is not set}"
psql -v ON_ERROR_STOP=1 -v pw="$LEDGER_DB_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'EOSQL'
CREATE USER ledger WITH PASSWORD :'pw';
CREATE DATABASE ledger OWNER ledger;
EOSQL
