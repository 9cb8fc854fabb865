#!/usr/bin/env bash
# The whole test run: install and build (scripts/setup.sh), start the brokers
# (tests/harness/harness.sh up all), run ctest, stop the brokers again.
#
#   scripts/test.sh                 every test
#   scripts/test.sh -L unit         extra arguments go to ctest (-L unit, -R smoke, ...)
#
# Exit status: ctest's (or 1 when setup or the brokers failed). On failure the brokers' data and
# logs stay under ${MQDR_HARNESS_DIR:-/tmp/mqdr-harness} and the tail of every log is printed.
# Brokers that were already running before the run are left running (a developer's machine);
# the ones this run started are stopped. MQDR_TEST_TIMEOUT (seconds, default 600) bounds each test.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

log() { printf '[test %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
H=tests/harness/harness.sh
BUILD=${MQDR_BUILD_DIR:-build}
start=$SECONDS

scripts/setup.sh || { log "scripts/setup.sh failed"; exit 1; }

# What already runs (a developer's brokers) is left running at the end; the rest is stopped.
mapfile -t before < <("$H" running)

rc=1
finish() {
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    log "FAILED (exit $rc): tail of the broker logs follows; everything is kept under ${MQDR_HARNESS_DIR:-/tmp/mqdr-harness}"
    MQDR_LOG_LINES=${MQDR_LOG_LINES:-30} "$H" logs || true
  fi
  if [ ${#before[@]} -eq 0 ]; then
    "$H" down || true
  else
    local -a ours
    mapfile -t ours < <("$H" running | grep -vxF -f <(printf '%s\n' "${before[@]}"))
    log "leaving up what ran before this run: ${before[*]}"
    [ ${#ours[@]} -eq 0 ] || "$H" down "${ours[@]}" || true
  fi
  log "total $((SECONDS - start))s, exit $rc"
  exit "$rc"
}
trap finish EXIT
trap 'rc=130; exit' INT TERM

if ! "$H" up all; then
  log "the brokers did not start"
  rc=1
  exit
fi
eval "$("$H" env)"

ctest --test-dir "$BUILD" --output-on-failure -j2 --timeout "${MQDR_TEST_TIMEOUT:-600}" "$@"
rc=$?
exit
