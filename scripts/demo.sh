#!/usr/bin/env bash
# The demo: install and build, start the local broker pairs, check config/demo.yaml and run
# mqdr in the foreground with it (Ctrl-C stops mqdr; the brokers keep running, stop them with
# `tests/harness/harness.sh down`).
#
#   scripts/demo.sh [extra `mqdr run` arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD=${MQDR_BUILD_DIR:-build}
CONFIG=${MQDR_DEMO_CONFIG:-config/demo.yaml}

scripts/setup.sh
tests/harness/harness.sh up
eval "$(tests/harness/harness.sh env)"

[ -x "$BUILD/mqdr" ] || { echo "demo: $BUILD/mqdr was not built" >&2; exit 1; }
[ -f "$CONFIG" ] || { echo "demo: $CONFIG does not exist" >&2; exit 2; }
"$BUILD/mqdr" validate -c "$CONFIG"
echo "demo: brokers up, starting mqdr (admin API and metrics as configured in $CONFIG)"
exec "$BUILD/mqdr" run -c "$CONFIG" "$@"
