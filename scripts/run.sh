#!/usr/bin/env bash
# `make run`: the whole demo on embedded defaults (SQLite, local Parquet/DuckDB, tantivy).
#  1. migrate            2. admin account        3. demo catalog + 30 days of shoppers (first run)
#  4. pipelines once     5. API + storefront, Dagster UI, a few live shoppers
# A second run finds the data under $DATA_DIR and starts in seconds. `rm -rf data` resets.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYTHONDONTWRITEBYTECODE  # keep bytecode: tests and make run start many processes
PY=.venv/bin/python
export DATA_DIR="${DATA_DIR:-$PWD/data}"
export DAGSTER_HOME="${DAGSTER_HOME:-$DATA_DIR/dagster}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
DAGSTER_PORT="${DAGSTER_PORT:-3000}"
DEMO_SEED="${DEMO_SEED:-7}"
DEMO_USERS="${DEMO_USERS:-2000}"
DEMO_PRODUCTS="${DEMO_PRODUCTS:-5000}"
DEMO_DAYS="${DEMO_DAYS:-30}"
LIVE_SHOPPERS="${LIVE_SHOPPERS:-3}"
STATE="$DATA_DIR/.state"
mkdir -p "$DATA_DIR" "$STATE" "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml" 2>/dev/null || true

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "1/5 migrating the database under $DATA_DIR"
"$PY" -m serving migrate

step "2/5 admin account"
if [ ! -f "$DATA_DIR/admin_password" ]; then
  "$PY" -c "import secrets; print(secrets.token_urlsafe(12))" > "$DATA_DIR/admin_password"
  chmod 600 "$DATA_DIR/admin_password"
fi
ADMIN_EMAIL="admin@storeloop.local"
ADMIN_PASSWORD="$(cat "$DATA_DIR/admin_password")"
STORELOOP_ADMIN_PASSWORD="$ADMIN_PASSWORD" "$PY" -m serving create-admin --email "$ADMIN_EMAIL"

if [ ! -f "$STATE/demo_history" ]; then
  step "3/5 demo shop: $DEMO_PRODUCTS products, $DEMO_USERS shoppers, $DEMO_DAYS simulated days (first run only)"
  "$PY" -m serving simulate --seed "$DEMO_SEED" --users "$DEMO_USERS" --products "$DEMO_PRODUCTS" \
    --days "$DEMO_DAYS" --start "$(date -u -d "-$DEMO_DAYS days" +%F)" --target inprocess --admin-email "$ADMIN_EMAIL" --admin-password "$ADMIN_PASSWORD"
  touch "$STATE/demo_history"
else
  step "3/5 demo shop already generated (rm -rf $DATA_DIR to start over)"
fi

if [ ! -f "$STATE/pipelines" ]; then
  step "4/5 pipelines: raw Parquet → DuckDB warehouse → features → models → search index"
  "$PY" -m pipelines.run_all
  touch "$STATE/pipelines"
else
  step "4/5 pipelines already ran once (retrain from the Dagster UI)"
fi

step "5/5 starting the shop, the Dagster UI and $LIVE_SHOPPERS live shoppers"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
"$PY" -m serving serve --host "$HOST" --port "$PORT" --no-migrate 2>>"$DATA_DIR/server.log" &
pids+=($!)
.venv/bin/dagster dev -m pipelines -h "$HOST" -p "$DAGSTER_PORT" >"$DATA_DIR/dagster-dev.log" 2>&1 &
pids+=($!)
printf 'waiting for the shop to be ready'
for _ in $(seq 1 360); do
  curl -fsS "http://$HOST:$PORT/readyz" >/dev/null 2>&1 && break
  printf '.'
  sleep 0.5
done
echo
if [ "$LIVE_SHOPPERS" -gt 0 ]; then
  "$PY" -m serving simulate live --target "http://$HOST:$PORT" --shoppers "$LIVE_SHOPPERS" \
    --seed "$DEMO_SEED" --users "$DEMO_USERS" --products "$DEMO_PRODUCTS" \
    --admin-email "$ADMIN_EMAIL" --admin-password "$ADMIN_PASSWORD" \
    >"$DATA_DIR/live-shoppers.log" 2>&1 &
  pids+=($!)
fi
cat <<MSG

  storeloop is running
    shop        http://$HOST:$PORT/
    API docs    http://$HOST:$PORT/docs
    operators   http://$HOST:$PORT/ops
    Dagster UI  http://$HOST:$DAGSTER_PORT/
    admin       $ADMIN_EMAIL / $ADMIN_PASSWORD
  Ctrl-C stops everything. Logs: $DATA_DIR/*.log

MSG
wait "${pids[0]}"
