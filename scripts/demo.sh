#!/usr/bin/env bash
# The demo: install and build, start the local broker pairs, seed the primaries (east) with
# orders, run mqdr with config/demo.yaml, show the mirrors catching up, run a DR drill (failover
# to west and back, measured and verified), then leave mqdr running in the foreground (Ctrl-C
# stops it; the brokers keep running, stop them with `tests/harness/harness.sh down`).
#
#   scripts/demo.sh                    the whole demo
#   MQDR_DEMO_EXIT=1 scripts/demo.sh   stop mqdr after the drill (exit status: the drill's)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD=${MQDR_BUILD_DIR:-build}
CONFIG=${MQDR_DEMO_CONFIG:-config/demo.yaml}
H=tests/harness/harness.sh
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

MQDR_BUILD_TYPE=${MQDR_BUILD_TYPE:-Release} MQDR_BUILD_TARGET=${MQDR_BUILD_TARGET:-mqdr} scripts/setup.sh
$H up
eval "$($H env)"
[ -x "$BUILD/mqdr" ] || { echo "demo: $BUILD/mqdr was not built" >&2; exit 1; }
[ -f "$CONFIG" ] || { echo "demo: $CONFIG does not exist" >&2; exit 2; }
MQDR="$BUILD/mqdr"
"$MQDR" validate -c "$CONFIG"
mkdir -p /tmp/mqdr-demo/clients /tmp/mqdr-demo/backups

say "seeding the primaries (east) with orders"
[ -d "${MQDR_HARNESS_DIR:-/tmp/mqdr-harness}/kafka-lib/tools" ] || $H fetch-bench
CP="$($H classpath core):$($H classpath tools)"
java -cp "$CP" org.apache.kafka.tools.TopicCommand --bootstrap-server "$MQDR_KAFKA_A" --create \
  --if-not-exists --topic orders.created --partitions 3 2>/dev/null
for i in $(seq 1 100); do echo "order-$i:{\"order\":$i,\"source\":\"demo\"}"; done |
  kcat -P -b "$MQDR_KAFKA_A" -t orders.created -K: -X enable.idempotence=true
echo "demo: Kafka $MQDR_KAFKA_A: topic orders.created, 100 records"
python3 scripts/demo_seed.py --messages 100 --nats "${MQDR_NATS_A#nats://}" \
  --rabbit-mgmt "${MQDR_RABBIT_A_MGMT:-http://127.0.0.1:35673}"

say "starting mqdr (admin API and metrics on 127.0.0.1:9780, log in /tmp/mqdr-demo/mqdr.log)"
"$MQDR" run -c "$CONFIG" > /tmp/mqdr-demo/mqdr.log 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 60); do
  "$MQDR" status -c "$CONFIG" > /dev/null 2>&1 && break
  sleep 1
done

say "mirrors catching up (a few seconds)"
sleep 8
# RabbitMQ mirrors what is published from now on (as federation does): a few more orders.
python3 - "${MQDR_RABBIT_A_MGMT:-http://127.0.0.1:35673}" <<'PY'
import base64, json, sys, urllib.request
auth = "Basic " + base64.b64encode(b"mqdr:mqdr-secret").decode()
for i in range(100, 120):
    req = urllib.request.Request(sys.argv[1] + "/api/exchanges/orders/orders/publish", method="POST",
        data=json.dumps({"properties": {"delivery_mode": 2}, "routing_key": "orders.created",
                         "payload": json.dumps({"order": i}), "payload_encoding": "string"}).encode(),
        headers={"Authorization": auth, "content-type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
PY
sleep 3
"$MQDR" status -c "$CONFIG"

say "DR drill: fail over to west, measure RTO/RPO, verify, fail back"
set +e
"$MQDR" drill -c "$CONFIG" --group demo --report /tmp/mqdr-demo/drill.json
drill=$?
set -e
echo "clients file: $(cat /tmp/mqdr-demo/clients/demo.json 2>/dev/null | head -c 300)"

if [ "${MQDR_DEMO_EXIT:-0}" = 1 ]; then
  exit "$drill"
fi
say "mqdr keeps running (Ctrl-C stops it). Try: $MQDR status -c $CONFIG; curl -s 127.0.0.1:9780/metrics"
wait $pid
