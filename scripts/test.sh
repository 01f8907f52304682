#!/usr/bin/env bash
# The whole suite: lint, every test on SQLite, then the database tests on PostgreSQL.
# In CI (CI=true) PostgreSQL is mandatory: an unreachable server fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."
unset PYTHONDONTWRITEBYTECODE  # keep bytecode: tests and make run start many processes
# Tests build their own shops; a developer's own shop settings must not leak into the servers
# that tests start as subprocesses.
unset DATA_DIR DATABASE_URL JWT_SECRET DAGSTER_HOME STORELOOP_DATA_DIR STORELOOP_DATABASE_URL
PY=.venv/bin/python
export STORELOOP_TEST_PG_URL="${STORELOOP_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"
export REDIS_TEST_URL="${REDIS_TEST_URL:-redis://127.0.0.1:6379/0}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
# Parallel pytest workers (pytest-xdist): most tests wait on servers, sockets and subprocesses,
# so two about halve the wall time on a 2-core machine. TEST_JOBS=1 (or 0) runs in one process.
# --dist loadfile keeps a file's tests on one worker, so module fixtures (a uvicorn server, a
# simulated shop) start once; files go out in collection order, which puts the long ones first
# (tests/conftest.py), not xdist's most-tests-first. Workers never share a database: each has
# its own SQLite file and its own PostgreSQL schema (tests/conftest.py).
JOBS="${TEST_JOBS:-2}"
XDIST=()
if [ "$JOBS" = "auto" ] || { [ "$JOBS" -gt 1 ] 2>/dev/null; }; then
  XDIST=(-n "$JOBS" --dist loadfile --no-loadscope-reorder)
fi

# pytest exits 5 when it collected nothing; that is not a failure of the code under test.
run_pytest() {
  "$PY" -m pytest "$@"
  local rc=$?
  if [ "$rc" -eq 5 ]; then echo "(no tests selected: $*)"; rc=0; fi
  return "$rc"
}

# Browser tests drive Debian's Chromium (never a downloaded browser); install it when missing.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> installing Debian's chromium for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/tmp/storeloop-chromium.log 2>&1 \
    || echo "(could not install chromium; browser tests will be skipped: see /tmp/storeloop-chromium.log)"
fi

echo "==> ruff"
.venv/bin/ruff check . || exit 1

echo "==> pytest on SQLite"
run_pytest -q --db sqlite ${XDIST[@]+"${XDIST[@]}"} "$@" || exit 1

pg_up() { "$PY" - <<'PYEOF'
import os, sys
import psycopg
try:
    psycopg.connect(os.environ["STORELOOP_TEST_PG_URL"], connect_timeout=3).close()
except Exception as exc:
    print(exc, file=sys.stderr); sys.exit(1)
PYEOF
}

if pg_up; then
  echo "==> pytest on PostgreSQL (database tests)"
  run_pytest -q --db postgresql -m db ${XDIST[@]+"${XDIST[@]}"} "$@" || exit 1
elif [ "${CI:-}" = "true" ]; then
  echo "FAIL: PostgreSQL at $STORELOOP_TEST_PG_URL is unreachable and CI requires it" >&2
  exit 1
else
  echo "==> PostgreSQL unreachable at $STORELOOP_TEST_PG_URL: skipping the PostgreSQL run (CI makes it mandatory)"
fi
