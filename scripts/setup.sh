#!/usr/bin/env bash
# Installs what mqdr needs on Debian 12 (packages, Kafka jars) and builds it. Idempotent: a rerun
# on a ready machine skips apt and maven and only rebuilds what changed.
#
#   scripts/setup.sh
#
# Environment:
#   MQDR_BUILD_DIR        build directory (default: build)
#   MQDR_CMAKE_FLAGS      extra cmake configure flags, e.g. "-DMQDR_SANITIZE=ON"
#   MQDR_BUILD_TYPE       CMAKE_BUILD_TYPE (default: RelWithDebInfo)
#   MQDR_BUILD_JOBS       parallel build jobs (default: the build tool's choice)
#   MQDR_SKIP_APT=1       do not look at Debian packages at all
#   MQDR_EXTRA_PACKAGES   more Debian packages to install (space separated)
#   MQDR_BUILD_TARGET     build only this target (e.g. mqdr; default: everything, tests included)
#   MQDR_SKIP_BUILD=1     install only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Every Debian package the project needs: build, tests (brokers, kcat, Prometheus for the ops
# integration test), the harness (Java + Maven for Kafka, curl, flock/setsid, ps).
PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  librdkafka-dev libnats-dev librabbitmq-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libcli11-dev nlohmann-json3-dev prometheus-cpp-dev
  libcpp-httplib-dev libsystemd-dev libzstd-dev libssl-dev
  nats-server rabbitmq-server kcat openjdk-17-jre-headless maven
  openssl curl python3 util-linux procps iproute2 prometheus systemd
)
# shellcheck disable=SC2206 # a space separated list
PACKAGES+=(${MQDR_EXTRA_PACKAGES:-})
# Services the Debian packages may have started; the harness runs its own brokers on other ports.
SERVICES=(rabbitmq-server nats-server prometheus prometheus-node-exporter)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else log "need root (or sudo) to run: $*"; return 1; fi
}

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

stop_system_services() {
  local s
  for s in "${SERVICES[@]}"; do
    [ -e "/etc/init.d/$s" ] || [ -e "/lib/systemd/system/$s.service" ] || continue
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      as_root systemctl stop "$s" >/dev/null 2>&1 || true
      as_root systemctl disable "$s" >/dev/null 2>&1 || true
    elif command -v service >/dev/null; then
      as_root service "$s" stop >/dev/null 2>&1 || true
    fi
  done
}

install_packages() {
  if [ "${MQDR_SKIP_APT:-0}" = 1 ]; then log "MQDR_SKIP_APT=1: not checking Debian packages"; return; fi
  local -a missing
  mapfile -t missing < <(missing_packages)
  if [ ${#missing[@]} -eq 0 ]; then
    log "all ${#PACKAGES[@]} Debian packages are installed"
    return
  fi
  log "installing ${#missing[@]} Debian packages: ${missing[*]}"
  local t0=$SECONDS
  # Keep the packages' services (rabbitmq-server, prometheus, ...) from starting at all while we
  # install: the harness runs its own brokers, and a failed service start must not fail dpkg.
  local policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy"
    # shellcheck disable=SC2064 # expand now: $policy is local
    trap "as_root rm -f $policy" EXIT
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null
  if [ "$(trap -p EXIT)" != "" ]; then as_root rm -f "$policy"; trap - EXIT; fi
  stop_system_services
  log "packages installed in $((SECONDS - t0))s"
}

build() {
  if [ "${MQDR_SKIP_BUILD:-0}" = 1 ]; then log "MQDR_SKIP_BUILD=1: not building"; return; fi
  local dir=${MQDR_BUILD_DIR:-build}
  local -a gen=()
  # Keep the generator of an existing build dir (cmake refuses to switch); Ninja for a new one.
  [ -f "$dir/CMakeCache.txt" ] || gen=(-G Ninja)
  local -a extra=()
  # shellcheck disable=SC2206 # MQDR_CMAKE_FLAGS is a list of flags
  [ -n "${MQDR_CMAKE_FLAGS:-}" ] && extra=(${MQDR_CMAKE_FLAGS})
  log "configuring $dir"
  cmake -S . -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE="${MQDR_BUILD_TYPE:-RelWithDebInfo}" "${extra[@]}"
  log "building $dir"
  local t0=$SECONDS
  local -a jobs=()
  [ -n "${MQDR_BUILD_JOBS:-}" ] && jobs=(--parallel "$MQDR_BUILD_JOBS")
  [ -n "${MQDR_BUILD_TARGET:-}" ] && jobs+=(--target "$MQDR_BUILD_TARGET")
  cmake --build "$dir" "${jobs[@]}"
  log "built in $((SECONDS - t0))s"
}

install_packages
log "fetching the Kafka broker jars (cached after the first run)"
tests/harness/harness.sh fetch
build
log "done"
