#!/usr/bin/env bash
# Brings up the shop on embedded defaults (SQLite, local files) and serves it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DATA_DIR="${DATA_DIR:-$PWD/data}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
mkdir -p "$DATA_DIR"

echo "==> migrating the database under $DATA_DIR"
"$PY" -m serving migrate

if [ ! -f "$DATA_DIR/admin_password" ]; then
  "$PY" -c "import secrets; print(secrets.token_urlsafe(12))" > "$DATA_DIR/admin_password"
  chmod 600 "$DATA_DIR/admin_password"
fi
ADMIN_EMAIL="admin@storeloop.local"
STORELOOP_ADMIN_PASSWORD="$(cat "$DATA_DIR/admin_password")" "$PY" -m serving create-admin --email "$ADMIN_EMAIL" >/dev/null

echo
echo "  shop:   http://$HOST:$PORT/"
echo "  API:    http://$HOST:$PORT/docs"
echo "  admin:  $ADMIN_EMAIL / $(cat "$DATA_DIR/admin_password")"
echo
exec "$PY" -m serving serve --host "$HOST" --port "$PORT" --no-migrate
