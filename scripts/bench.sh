#!/usr/bin/env bash
# The side-by-side benchmarks (bench/): mqdr vs MirrorMaker 2 (Kafka), mqdr's relay vs JetStream
# stream sourcing (NATS), mqdr vs the shovel plugin (RabbitMQ). Never part of the tests; nothing
# is asserted. Run on an otherwise idle machine for figures worth comparing (the load average is
# printed with every result).
#
#   scripts/bench.sh                      all three, the default sizes
#   scripts/bench.sh kafka nats           only those
#   KAFKA_ARGS='--records 1000000' NATS_ARGS='--messages 1000000' RABBIT_ARGS='--messages 100000' \
#     scripts/bench.sh
#
# Configures ${MQDR_BENCH_BUILD_DIR:-build-bench} (Release, -DMQDR_BUILD_BENCH=ON, no tests),
# builds only mqdr and the bench executables, fetches the MirrorMaker 2 jars (Maven Central,
# cached), starts the brokers it needs (tests/harness/harness.sh up; those already running are
# left alone and left running; the ones this script started are stopped at the end) and prints
# each benchmark's table. Packages: run scripts/setup.sh first on a fresh machine.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
H=tests/harness/harness.sh
BUILD=${MQDR_BENCH_BUILD_DIR:-build-bench}
which=("$@")
[ ${#which[@]} -gt 0 ] || which=(kafka nats rabbitmq)
want() { local w; for w in "${which[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

targets=(mqdr)
units=()
want kafka && targets+=(kafka_bench) && units+=(kafka-a kafka-b)
want nats && targets+=(nats_bench) && units+=(nats-a nats-b nats-native)
want rabbitmq && targets+=(rabbit_bench) && units+=(rabbit-a rabbit-b)

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMQDR_BUILD_BENCH=ON \
  -DMQDR_BUILD_TESTS=OFF >/dev/null || exit 1
nice -n 10 cmake --build "$BUILD" -j2 --target "${targets[@]}" || exit 1
if want kafka; then "$H" fetch-bench || exit 1; fi

mapfile -t before < <("$H" running)
finish() {
  local -a ours
  mapfile -t ours < <("$H" running | grep -vxF -f <(printf '%s\n' "${before[@]}" ''))
  [ ${#ours[@]} -eq 0 ] || "$H" down "${ours[@]}" || true
}
trap finish EXIT
"$H" up "${units[@]}" || { log "the brokers did not start"; exit 1; }
eval "$("$H" env)"

log "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
if want kafka; then
  log "kafka_bench ${KAFKA_ARGS:-}"
  # shellcheck disable=SC2086
  "$BUILD/bench/kafka/kafka_bench" ${KAFKA_ARGS:-} || rc=1
fi
if want nats; then
  log "nats_bench ${NATS_ARGS:-}"
  # shellcheck disable=SC2086
  "$BUILD/bench/nats/nats_bench" ${NATS_ARGS:-} || rc=1
fi
if want rabbitmq; then
  log "rabbit_bench ${RABBIT_ARGS:-}"
  # shellcheck disable=SC2086
  "$BUILD/bench/rabbitmq/rabbit_bench" ${RABBIT_ARGS:-} || rc=1
fi
log "done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
exit $rc
