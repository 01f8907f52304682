#!/usr/bin/env bash
# `make run`: the whole demo on embedded defaults (SQLite, local Parquet/DuckDB, tantivy).
#  1. migrate            2. admin account        3. demo catalog + simulated shoppers (first run)
#  4. pipelines once     5. API + storefront, Dagster UI (schedule and sensor on), live shoppers
# A second run finds the data under $DATA_DIR and starts in seconds. `rm -rf data` resets.
# Settings (environment): HOST PORT DAGSTER_PORT DATA_DIR DEMO_SEED DEMO_USERS DEMO_PRODUCTS
# DEMO_DAYS LIVE_SHOPPERS LIVE_THINK SENSOR_INTERVAL; README.md ("Configuration") explains each.
#
# Every long-running child starts in its own process group (`set -m` around the `&`), so
#  - it does not inherit "SIGINT ignored" (what a background job of a script otherwise gets;
#    Dagster's dev server then ignored SIGTERM too and outlived the script), and
#  - Ctrl-C or SIGTERM on this script stops it and everything it started (`dg dev`'s
#    webserver, daemon, code server and runs) by signalling the group, within a few seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
unset PYTHONDONTWRITEBYTECODE  # keep bytecode: tests and make run start many processes
PY="$ROOT/.venv/bin/python"
export DATA_DIR="${DATA_DIR:-$ROOT/data}"
mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
export DAGSTER_HOME="${DAGSTER_HOME:-$DATA_DIR/dagster}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
DAGSTER_PORT="${DAGSTER_PORT:-3000}"
DEMO_SEED="${DEMO_SEED:-7}"
DEMO_USERS="${DEMO_USERS:-1500}"
DEMO_PRODUCTS="${DEMO_PRODUCTS:-3000}"
DEMO_DAYS="${DEMO_DAYS:-10}"
LIVE_SHOPPERS="${LIVE_SHOPPERS:-3}"
LIVE_THINK="${LIVE_THINK:-2.0}"
# The closed-segment sensor and the nightly schedule run in the Dagster daemon from the start;
# the event log closes a segment every SEGMENT_SECONDS, the sensor looks every SENSOR_INTERVAL.
export STORELOOP_AUTOMATION="${STORELOOP_AUTOMATION:-on}"
export STORELOOP_SENSOR_INTERVAL="${SENSOR_INTERVAL:-${STORELOOP_SENSOR_INTERVAL:-60}}"
# The dashboard links to the Dagster UI the script starts, on whatever port that is.
export STORELOOP_DAGSTER_URL="${STORELOOP_DAGSTER_URL:-http://$HOST:$DAGSTER_PORT}"
STATE="$DATA_DIR/.state"
mkdir -p "$STATE" "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml" 2>/dev/null || true

STARTED=$SECONDS
step() { printf '\n\033[1m==> [%4ds] %s\033[0m\n' "$((SECONDS - STARTED))" "$*"; }
done_step() { printf '    done in %ds: %s\n' "$1" "$2"; }

# --- stopping: every child is a process group; signal them all, then KILL what is left -----
# Dagster's `dg dev` shuts its webserver, daemon and code server down in order on SIGINT (its
# KeyboardInterrupt path); on SIGTERM it does not, and a code server it restarts outlives it.
# So its group gets INT, the others TERM. What is still there after STOP_GRACE seconds (3 by
# default: an idle Dagster needs about one) is killed: a stop is what the user asked for.
pids=()
int_pids=" "
stopping=0
stop_all() {
  local code=${1:-0}
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM
  if [ "${#pids[@]}" -gt 0 ]; then
    printf '\nstopping storeloop (%d process groups)...\n' "${#pids[@]}"
    for p in "${pids[@]}"; do
      case "$int_pids" in
        *" $p "*) kill -INT -- "-$p" 2>/dev/null || true ;;
        *) kill -TERM -- "-$p" 2>/dev/null || true ;;
      esac
    done
    local ticks=$(( ${STOP_GRACE:-3} * 10 ))
    for _ in $(seq 1 "$ticks"); do
      alive=0
      for p in "${pids[@]}"; do kill -0 -- "-$p" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
  fi
  exit "$code"
}
trap 'stop_all 0' INT TERM
trap 'stop_all $?' EXIT

# Start "$@" in the background as its own process group; its pid (= group id) goes to $!.
spawn() {
  set -m
  "$@" &
  set +m
  pids+=($!)
}

# A long step: run it as a group of its own and wait, so a signal stops it at once.
run_step() {
  spawn "$@"
  local pid=$!
  local rc=0
  wait "$pid" || rc=$?
  unset 'pids[-1]'
  return "$rc"
}

# --- ports: refuse to start on a taken port, in one line, before any long step -------------
port_taken() {
  "$PY" - "$HOST" "$1" <<'PYCODE'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
# As the servers bind: a port in TIME_WAIT after a stop is free, a listening one is not.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((host, port))
except OSError:
    sys.exit(0)
finally:
    s.close()
sys.exit(1)
PYCODE
}
for spec in "PORT:$PORT:the shop" "DAGSTER_PORT:$DAGSTER_PORT:the Dagster UI"; do
  IFS=: read -r name port what <<<"$spec"
  if port_taken "$port"; then
    echo "error: port $port on $HOST ($what) is already in use; stop what holds it" \
      "(ss -ltnp 'sport = :$port' shows it) or choose another: make run $name=$((port + 1))" >&2
    trap - EXIT
    exit 2
  fi
done

t=$SECONDS
step "1/5 migrating the database under $DATA_DIR"
"$PY" -m serving migrate
done_step $((SECONDS - t)) "schema up to date"

t=$SECONDS
step "2/5 admin account"
if [ ! -f "$DATA_DIR/admin_password" ]; then
  "$PY" -c "import secrets; print(secrets.token_urlsafe(12))" > "$DATA_DIR/admin_password"
  chmod 600 "$DATA_DIR/admin_password"
fi
ADMIN_EMAIL="admin@storeloop.local"
ADMIN_PASSWORD="$(cat "$DATA_DIR/admin_password")"
STORELOOP_ADMIN_PASSWORD="$ADMIN_PASSWORD" "$PY" -m serving create-admin --email "$ADMIN_EMAIL"
done_step $((SECONDS - t)) "$ADMIN_EMAIL"

t=$SECONDS
if [ ! -f "$STATE/demo_history" ]; then
  step "3/5 demo shop: $DEMO_PRODUCTS products, $DEMO_USERS shoppers, $DEMO_DAYS simulated days (first run only)"
  run_step "$PY" -m serving simulate --seed "$DEMO_SEED" --users "$DEMO_USERS" \
    --products "$DEMO_PRODUCTS" --days "$DEMO_DAYS" --start "$(date -u -d "-$DEMO_DAYS days" +%F)" \
    --target inprocess --admin-email "$ADMIN_EMAIL" --admin-password "$ADMIN_PASSWORD"
  touch "$STATE/demo_history"
  done_step $((SECONDS - t)) "demo history generated"
else
  step "3/5 demo shop already generated (rm -rf $DATA_DIR to start over)"
fi

t=$SECONDS
if [ ! -f "$STATE/pipelines" ]; then
  step "4/5 pipelines: raw Parquet → DuckDB warehouse → features → models → search index (Dagster log: $DATA_DIR/pipelines.log)"
  if ! run_step "$PY" -m pipelines.run_all 2>>"$DATA_DIR/pipelines.log"; then
    echo "error: the pipelines failed; the last lines of $DATA_DIR/pipelines.log:" >&2
    grep -E "ERROR|FAILURE|Error" "$DATA_DIR/pipelines.log" | tail -n 5 >&2 || true
    exit 1
  fi
  touch "$STATE/pipelines"
  done_step $((SECONDS - t)) "lake, warehouse, models and search index built"
else
  step "4/5 pipelines already ran once (the sensor and the nightly schedule keep them fresh)"
fi

t=$SECONDS
step "5/5 starting the shop, the Dagster UI and $LIVE_SHOPPERS live shoppers (logs: $DATA_DIR/*.log)"
spawn "$PY" -m serving serve --host "$HOST" --port "$PORT" --no-migrate 2>>"$DATA_DIR/server.log"
SERVER=$!
# `dg dev` is what Dagster 1.13 recommends over `dagster dev` (which now warns that it is
# superseded); with a module target (-m) it starts the same webserver, daemon and code server.
# From DAGSTER_HOME, so it reads the instance there and does not warn about the repository's
# dagster.yaml in the current folder; the code comes from the repository (-d).
spawn bash -c 'cd "$DAGSTER_HOME" && exec "$0" dev -m pipelines -d "$1" -h "$2" -p "$3"' \
  "$ROOT/.venv/bin/dg" "$ROOT" "$HOST" "$DAGSTER_PORT" >"$DATA_DIR/dagster-dev.log" 2>&1
DAGSTER=$!
int_pids+="$DAGSTER "
printf 'waiting for the shop on http://%s:%s/ ' "$HOST" "$PORT"
ready=0
for _ in $(seq 1 600); do
  if curl -fsS "http://$HOST:$PORT/readyz" >/dev/null 2>&1; then ready=1; break; fi
  if ! kill -0 "$SERVER" 2>/dev/null; then
    echo
    echo "error: the shop stopped while starting; the end of $DATA_DIR/server.log:" >&2
    tail -n 5 "$DATA_DIR/server.log" >&2
    exit 1
  fi
  printf '.'
  sleep 0.5
done
echo
[ "$ready" = 1 ] || { echo "error: the shop was not ready after 300 s (see $DATA_DIR/server.log)" >&2; exit 1; }
if [ "$LIVE_SHOPPERS" -gt 0 ]; then
  spawn "$PY" -m serving simulate live --target "http://$HOST:$PORT" --shoppers "$LIVE_SHOPPERS" \
    --think "$LIVE_THINK" --seed "$DEMO_SEED" --users "$DEMO_USERS" --products "$DEMO_PRODUCTS" \
    --admin-email "$ADMIN_EMAIL" --admin-password "$ADMIN_PASSWORD" \
    >"$DATA_DIR/live-shoppers.log" 2>&1
fi
done_step $((SECONDS - t)) "shop ready"
cat <<MSG

  storeloop is running (ready $((SECONDS - STARTED)) s after start)
    shop        http://$HOST:$PORT/
    API docs    http://$HOST:$PORT/docs
    operators   http://$HOST:$PORT/ops
    Dagster UI  http://$HOST:$DAGSTER_PORT/  (sensor and nightly schedule on)
    admin       $ADMIN_EMAIL / $ADMIN_PASSWORD
  Ctrl-C stops everything. Logs: $DATA_DIR/*.log

MSG
# Until a signal, or until the shop or Dagster stops by itself (then stop the rest too).
while kill -0 "$SERVER" 2>/dev/null && kill -0 "$DAGSTER" 2>/dev/null; do
  sleep 1 &
  wait $! || true
done
echo "error: $(kill -0 "$SERVER" 2>/dev/null && echo "dg dev (Dagster)" || echo "the shop") stopped; see $DATA_DIR/*.log" >&2
stop_all 1
