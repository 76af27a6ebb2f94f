#!/bin/sh
# Runs once, when the database volume is created. The tables belong to POSTGRES_USER, who runs the migrations;
# the web server, workers and beat connect as a role that may read and write rows but owns nothing, so it can
# neither disable the audit trail's append-only triggers nor alter any table.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE rollback_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '${APP_DB_PASSWORD}';
GRANT CONNECT ON DATABASE "$POSTGRES_DB" TO rollback_app;
GRANT USAGE ON SCHEMA public TO rollback_app;
ALTER DEFAULT PRIVILEGES FOR ROLE "$POSTGRES_USER" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO rollback_app;
ALTER DEFAULT PRIVILEGES FOR ROLE "$POSTGRES_USER" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO rollback_app;
SQL
