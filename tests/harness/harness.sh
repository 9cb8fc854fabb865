#!/usr/bin/env bash
# mqdr real-broker harness: two Kafka clusters (KRaft), two NATS JetStream servers (plus an
# optional hub/leaf pair with JetStream domains) and two RabbitMQ nodes, all on loopback, all
# state under ${MQDR_HARNESS_DIR:-/tmp/mqdr-harness}. No Docker, no system services.
#
#   harness.sh up     [components...]   start (idempotent) and wait until really ready
#   harness.sh down   [--wipe] [components...]   stop (whole process groups); --wipe deletes data
#   harness.sh kill9  components...     SIGKILL, for failover tests (restart with `up`)
#   harness.sh status [components...]   running/ready table; exit 1 if one is not ready
#   harness.sh env                      `export MQDR_...=` lines for every endpoint
#   harness.sh running                  the units (processes) running now, one per line
#   harness.sh logs   [component]       tail of the logs
#   harness.sh fetch                    download the Kafka broker jars (maven, cached)
#   harness.sh fetch-bench              download MirrorMaker 2 and kafka-tools jars
#   harness.sh classpath core|mirror|tools   classpath of those jars (fetches if needed)
#   harness.sh rabbitmqctl a|b ARGS...  (also rabbitmq-diagnostics, rabbitmq-plugins, rabbitmq-queues)
#
# Components: kafka-a kafka-b nats-a nats-b rabbit-a rabbit-b (the default set, also `default`),
# nats-native (= nats-hub + nats-leaf), tls (= kafka-tls + nats-tls + rabbit-a, whose amqps
# listeners use the same certificates), all (= default + nats-native + tls), kafka-a:N (one node
# of a multi-node kafka-a), epmd (the private Erlang port mapper used by both RabbitMQ nodes).
# KAFKA_A_NODES=3 makes kafka-a a 3-node cluster (decided when its log dirs are formatted).
# See tests/harness/README.md for ports and environment variables.
set -euo pipefail

HARNESS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HARNESS_SH="$HARNESS_SRC/$(basename "${BASH_SOURCE[0]}")"
HDIR=${MQDR_HARNESS_DIR:-/tmp/mqdr-harness}
KAFKA_LIB_DIR=${MQDR_KAFKA_LIB_DIR:-$HDIR/kafka-lib}
READY_TIMEOUT=${MQDR_HARNESS_TIMEOUT:-150}   # seconds, per component
STOP_TIMEOUT=${MQDR_HARNESS_STOP_TIMEOUT:-30}
JAVA=${JAVA:-java}
if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA="$JAVA_HOME/bin/java"; fi
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms64m -Xmx512m}
RABBIT_SBIN=${MQDR_RABBIT_SBIN:-/usr/lib/rabbitmq/bin}

# --- fixed ports (none collide with the brokers' defaults) ------------------------------------
# MQDR_HARNESS_PORT_OFFSET shifts every port, for a second harness (own MQDR_HARNESS_DIR) beside
# the first one.
# The offset is remembered in $HDIR/port-offset, so later calls need only MQDR_HARNESS_DIR.
PO=${MQDR_HARNESS_PORT_OFFSET:-}
if [ -z "$PO" ] && [ -f "$HDIR/port-offset" ]; then PO=$(cat "$HDIR/port-offset"); fi
PO=${PO:-0}
case "$PO" in ''|*[!0-9]*) echo "MQDR_HARNESS_PORT_OFFSET must be a number" >&2; exit 2 ;; esac
if [ -f "$HDIR/port-offset" ] && [ "$(cat "$HDIR/port-offset")" != "$PO" ] &&
   [ -n "$(find "$HDIR" -maxdepth 3 -name pid -type f 2>/dev/null)" ]; then
  echo "$HDIR runs with MQDR_HARNESS_PORT_OFFSET=$(cat "$HDIR/port-offset"), not $PO; stop it first" >&2
  exit 2
fi
KAFKA_A_PORT0=$((19092 + PO)) # node i: broker 19092+2(i-1), controller 19093+2(i-1)
KAFKA_B_PORT0=$((29092 + PO))
NATS_A_PORT=$((14222 + PO)) NATS_A_MON=$((18222 + PO))
NATS_B_PORT=$((24222 + PO)) NATS_B_MON=$((28222 + PO))
NATS_HUB_PORT=$((34222 + PO)) NATS_HUB_MON=$((38222 + PO)) NATS_HUB_LEAF_PORT=$((34223 + PO))
NATS_LEAF_PORT=$((44222 + PO)) NATS_LEAF_MON=$((48222 + PO))
RABBIT_A_PORT=$((35672 + PO)) RABBIT_A_MGMT=$((35673 + PO)) RABBIT_A_DIST=$((35674 + PO))
RABBIT_B_PORT=$((45672 + PO)) RABBIT_B_MGMT=$((45673 + PO)) RABBIT_B_DIST=$((45674 + PO))
EPMD_PORT=$((14369 + PO))
RABBIT_USER=mqdr RABBIT_PASS=mqdr-secret
# TLS/SASL brokers (`up tls`). kafka-tls: PLAINTEXT (harness and inter-broker use), SSL with a
# required client certificate, SASL_SSL with SCRAM-SHA-512 and PLAIN, and a second SSL listener
# on 127.0.0.2, an address the server certificate does not name (hostname-check tests).
# Below the kernel's ephemeral range (32768+), so that a client connection's local port cannot
# hold one of them when the broker binds.
KAFKA_TLS_PLAIN=$((17092 + PO)) KAFKA_TLS_CTRL=$((17093 + PO)) KAFKA_TLS_SSL=$((17094 + PO))
KAFKA_TLS_SASL=$((17095 + PO)) KAFKA_TLS_OTHER=$((17096 + PO))
NATS_TLS_PORT=$((16222 + PO)) NATS_TLS_MON=$((16223 + PO))
# rabbit-a's amqps listeners (client certificate required): 127.0.0.1 and 127.0.0.2.
RABBIT_A_TLS=$((16671 + PO)) RABBIT_A_TLS_OTHER=$((16672 + PO))
# Credentials of the TLS brokers: distinctive strings, so tests can grep outputs for them.
KAFKA_SCRAM_USER=mqdr-scram KAFKA_SCRAM_PASS=scram-pw-h4rn3ss-51
KAFKA_PLAIN_USER=mqdr-plain KAFKA_PLAIN_PASS=plain-pw-h4rn3ss-52
NATS_TLS_TOKEN=nats-token-h4rn3ss-53
RABBIT_TLS_USER=mqdr-tls RABBIT_TLS_PASS=rabbit-pw-h4rn3ss-54
KAFKA_TLS_CLUSTER_ID=tLsLq1EsQ0mU2hX7kZr9Xw
TLS_DIR="$HDIR/tls"

# Fixed KRaft cluster ids (base64url of a random UUID), so A and B differ and stay stable.
KAFKA_A_CLUSTER_ID=wBBOFTTDRMaM4oyszRjaZg
KAFKA_B_CLUSTER_ID=IW5ca4mxTU6dTf3pG9SB5A

DEFAULT_COMPONENTS=(kafka-a kafka-b nats-a nats-b rabbit-a rabbit-b)

log() { printf '[harness %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
err() { printf '[harness %s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { err "$*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- kafka-a node count -----------------------------------------------------------------------
kafka_nodes() { # cluster -> node count (stored at format time; KAFKA_A_NODES for a new kafka-a)
  if [ -f "$HDIR/$1/nodes" ]; then cat "$HDIR/$1/nodes"
  elif [ "$1" = kafka-a ]; then echo "${KAFKA_A_NODES:-1}"
  else echo 1; fi
}
kafka_port0() { [ "$1" = kafka-a ] && echo $KAFKA_A_PORT0 || echo $KAFKA_B_PORT0; }
kafka_broker_port() { echo $(( $(kafka_port0 "$1") + 2 * ($2 - 1) )); }
kafka_ctrl_port() { echo $(( $(kafka_port0 "$1") + 2 * ($2 - 1) + 1 )); }
kafka_bootstrap() {
  local c=$1 n i out=""
  n=$(kafka_nodes "$c")
  for ((i = 1; i <= n; i++)); do out+="${out:+,}127.0.0.1:$(kafka_broker_port "$c" $i)"; done
  echo "$out"
}

# --- components and units ---------------------------------------------------------------------
# A unit is one process: kafka-a:1 .. kafka-a:3, kafka-b:1, nats-a, nats-b, nats-hub, nats-leaf,
# epmd, rabbit-a, rabbit-b.
units_of() {
  local c=$1 i n
  case "$c" in
    kafka-a|kafka-b) n=$(kafka_nodes "$c"); for ((i = 1; i <= n; i++)); do echo "$c:$i"; done ;;
    kafka-a:[1-3]|kafka-b:1) echo "$c" ;;
    nats-a|nats-b|nats-hub|nats-leaf|epmd|rabbit-a|rabbit-b) echo "$c" ;;
    kafka-tls|nats-tls) echo "$c" ;;
    nats-native) echo nats-hub; echo nats-leaf ;;
    tls) echo kafka-tls; echo nats-tls; echo rabbit-a ;;
    default) for i in "${DEFAULT_COMPONENTS[@]}"; do units_of "$i"; done ;;
    all) units_of default; units_of nats-native; echo kafka-tls; echo nats-tls ;;
  esac
}
# Run in the main shell (not in $(...)) so that `die` ends the script.
check_components() {
  local c
  for c in "$@"; do
    case "$c" in
      kafka-a|kafka-b|nats-a|nats-b|nats-hub|nats-leaf|nats-native|epmd|rabbit-a|rabbit-b|default|all) ;;
      kafka-tls|nats-tls|tls) ;;
      kafka-a:[1-3]|kafka-b:1)
        [ "${c#*:}" -le "$(kafka_nodes "${c%%:*}")" ] ||
          die "$c: ${c%%:*} has $(kafka_nodes "${c%%:*}") node(s)" ;;
      *) die "unknown component '$c' (kafka-a kafka-b kafka-a:N nats-a nats-b nats-native nats-hub nats-leaf rabbit-a rabbit-b kafka-tls nats-tls tls epmd default all)" ;;
    esac
  done
}
expand_units() { # components... -> unique units, in order
  local c
  for c in "$@"; do units_of "$c"; done | awk '!seen[$0]++'
}
unit_dir() {
  case "$1" in
    kafka-*:*) echo "$HDIR/${1%%:*}/node${1#*:}" ;;
    *) echo "$HDIR/$1" ;;
  esac
}
unit_pidfile() { echo "$(unit_dir "$1")/pid"; }
unit_log() { echo "$(unit_dir "$1")/stdout.log"; }
unit_ports() { # ports the unit listens on
  case "$1" in
    kafka-*:*) echo "$(kafka_broker_port "${1%%:*}" "${1#*:}") $(kafka_ctrl_port "${1%%:*}" "${1#*:}")" ;;
    nats-a) echo "$NATS_A_PORT $NATS_A_MON" ;;
    nats-b) echo "$NATS_B_PORT $NATS_B_MON" ;;
    nats-hub) echo "$NATS_HUB_PORT $NATS_HUB_MON $NATS_HUB_LEAF_PORT" ;;
    nats-leaf) echo "$NATS_LEAF_PORT $NATS_LEAF_MON" ;;
    kafka-tls) echo "$KAFKA_TLS_PLAIN $KAFKA_TLS_CTRL $KAFKA_TLS_SSL $KAFKA_TLS_SASL $KAFKA_TLS_OTHER" ;;
    nats-tls) echo "$NATS_TLS_PORT $NATS_TLS_MON" ;;
    rabbit-a) echo "$RABBIT_A_PORT $RABBIT_A_MGMT $RABBIT_A_DIST $RABBIT_A_TLS $RABBIT_A_TLS_OTHER" ;;
    rabbit-b) echo "$RABBIT_B_PORT $RABBIT_B_MGMT $RABBIT_B_DIST" ;;
    epmd) echo "$EPMD_PORT" ;;
  esac
}
# Logs worth showing when a unit fails.
unit_logs() {
  local d; d=$(unit_dir "$1")
  echo "$d/stdout.log"
  case "$1" in
    kafka-*) echo "$d/server.log" ;;
    rabbit-*) echo "$d/log/$1@localhost.log" ;;
  esac
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The pid file holds the pid of a session leader (= its process group id). A unit is alive when
# that process exists and carries our marker in its environment (guards against pid reuse).
unit_pid() {
  local f; f=$(unit_pidfile "$1")
  [ -s "$f" ] || return 1
  local pid; pid=$(cat "$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/environ" ] || return 1
  grep -qzxF "MQDR_HARNESS_UNIT=$HDIR/$1" "/proc/$pid/environ" 2>/dev/null || return 1
  echo "$pid"
}
unit_alive() { unit_pid "$1" >/dev/null; }

# spawn UNIT CMD... : run CMD in its own session (process group) with output to the unit's log.
spawn() {
  local u=$1; shift
  local d pidfile; d=$(unit_dir "$u"); pidfile=$(unit_pidfile "$u")
  mkdir -p "$d"
  rm -f "$pidfile"
  printf '\n===== %s start %s =====\n' "$u" "$(date -Is)" >>"$(unit_log "$u")"
  # shellcheck disable=SC2016 # $$ and $0 belong to the inner shell
  MQDR_HARNESS_UNIT="$HDIR/$u" MQDR_HARNESS_TAG="$HDIR" \
    setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
    >>"$(unit_log "$u")" 2>&1 </dev/null 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do [ -s "$pidfile" ] && return 0; sleep 0.05; done
  err "$u: did not start (no pid file); see $(unit_log "$u")"
  return 1
}

# stop_unit UNIT [SIGNAL]: signal the whole process group, wait, escalate to SIGKILL.
stop_unit() {
  local u=$1 sig=${2:-TERM} pid i
  if ! pid=$(unit_pid "$u"); then rm -f "$(unit_pidfile "$u")"; return 0; fi
  kill -"$sig" -- "-$pid" 2>/dev/null || true
  if [ "$sig" != KILL ]; then
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
      err "$u: still running ${STOP_TIMEOUT}s after SIG$sig, sending SIGKILL"
    fi
  fi
  kill -KILL -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.05; done
  # Helpers that left the group (Erlang's erl_child_setup and inet_gethost call setsid) but
  # inherited the unit's marker.
  local stray; stray=$(tagged_pids "MQDR_HARNESS_UNIT=$HDIR/$u" | tr '\n' ' ')
  # shellcheck disable=SC2086
  [ -z "${stray// /}" ] || kill -KILL $stray 2>/dev/null || true
  rm -f "$(unit_pidfile "$u")"
}

# tagged_pids MARKER: pids of the processes whose environment holds the line MARKER
# (default: every process started by this harness for this HDIR).
tagged_pids() {
  local marker=${1:-MQDR_HARNESS_TAG=$HDIR} f
  for f in $(grep -lzxF "$marker" /proc/[0-9]*/environ 2>/dev/null); do
    f=${f#/proc/}; f=${f%/environ}
    [ "$f" != $$ ] && echo "$f"
  done
  return 0
}

# --- Kafka ------------------------------------------------------------------------------------
pom_stamp() { cat "$@" | sha256sum | cut -d' ' -f1; }
fetch_jars() { # kind pom
  local kind=$1 pom=$2 dest="$KAFKA_LIB_DIR/$1" stamp
  stamp=$(pom_stamp "$pom")
  if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp" ]; then return 0; fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven, or run scripts/setup.sh)"
  log "fetching Kafka $kind jars with maven into $dest (cached in ~/.m2)"
  local t0; t0=$(now)
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp"
  if ! mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$dest.tmp" >"$KAFKA_LIB_DIR/mvn-$kind.log" 2>&1; then
    tail -n 30 "$KAFKA_LIB_DIR/mvn-$kind.log" >&2
    die "maven could not fetch the $kind jars; full output in $KAFKA_LIB_DIR/mvn-$kind.log"
  fi
  echo "$stamp" >"$dest.tmp/.stamp"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  log "fetched $kind jars ($(ls "$dest" | wc -l) files) in $(since "$t0")s"
}
fetch_core() { mkdir -p "$KAFKA_LIB_DIR"; fetch_jars core "$HARNESS_SRC/kafka/pom.xml"; }
fetch_bench() {
  mkdir -p "$KAFKA_LIB_DIR"
  fetch_jars mirror "$HARNESS_SRC/kafka/pom-mirror.xml"
  fetch_jars tools "$HARNESS_SRC/kafka/pom-tools.xml"
}

kafka_prepare() { # unit
  local u=$1 c=${1%%:*} i=${1#*:} d n voters="" j rf minisr
  d=$(unit_dir "$u"); n=$(kafka_nodes "$c")
  for ((j = 1; j <= n; j++)); do voters+="${voters:+,}$j@127.0.0.1:$(kafka_ctrl_port "$c" $j)"; done
  if [ "$n" -ge 3 ]; then rf=3 minisr=2; else rf=1 minisr=1; fi
  mkdir -p "$d/data"
  cat >"$d/server.properties" <<EOF
# Generated by tests/harness/harness.sh: $c node $i of $n (KRaft, combined broker+controller).
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(kafka_broker_port "$c" "$i"),CONTROLLER://127.0.0.1:$(kafka_ctrl_port "$c" "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_broker_port "$c" "$i")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
# Topics must be created explicitly: the tests prove that mqdr creates them.
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$minisr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$minisr
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0
# Small machine: few threads, small cleaner buffer (it is taken from the 512 MB heap).
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
log.retention.hours=168
EOF
  cat >"$d/log4j.properties" <<EOF
# Generated by tests/harness/harness.sh: WARN and above to a file in the node's directory.
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$d/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
# "Kafka Server started" / "shut down completed" lines, handy when reading a failed run.
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
EOF
  echo "$n" >"$HDIR/$c/nodes"
  if [ ! -f "$d/data/meta.properties" ]; then
    local id; [ "$c" = kafka-a ] && id=$KAFKA_A_CLUSTER_ID || id=$KAFKA_B_CLUSTER_ID
    if ! "$JAVA" -Xms32m -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j.configuration="file:$d/log4j.properties" \
        -cp "$KAFKA_LIB_DIR/core/*" kafka.tools.StorageTool format -t "$id" -c "$d/server.properties" \
        --ignore-formatted >>"$(unit_log "$u")" 2>&1; then
      err "$u: formatting $d/data failed; see $(unit_log "$u")"
      return 1
    fi
  fi
}
kafka_start() {
  local u=$1 d; d=$(unit_dir "$u")
  kafka_prepare "$u" || return 1
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS holds several options
  spawn "$u" "$JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dkafka.logs.dir="$d" -Dlog4j.configuration="file:$d/log4j.properties" \
    -cp "$KAFKA_LIB_DIR/core/*" kafka.Kafka "$d/server.properties"
}
kafka_ready() { # unit: the node answers a metadata request and lists itself as a live broker
  local c=${1%%:*} i=${1#*:} port
  port=$(kafka_broker_port "$c" "$i")
  if command -v kcat >/dev/null; then
    kcat -b "127.0.0.1:$port" -L -m 3 -t __mqdr_harness_probe 2>/dev/null |
      grep -qE "^ *broker $i at 127\.0\.0\.1:$port\b"
  else # fall back on the port and the broker's own "started" line
    port_open "$port" && grep -q 'Kafka Server started' "$(unit_dir "$1")/server.log" 2>/dev/null
  fi
}

# --- NATS -------------------------------------------------------------------------------------
nats_start() {
  local u=$1 d port mon extra=""
  d=$(unit_dir "$u")
  case "$u" in
    nats-a) port=$NATS_A_PORT mon=$NATS_A_MON ;;
    nats-b) port=$NATS_B_PORT mon=$NATS_B_MON ;;
    nats-hub) port=$NATS_HUB_PORT mon=$NATS_HUB_MON
      extra="leafnodes { listen: \"127.0.0.1:$NATS_HUB_LEAF_PORT\" }" ;;
    nats-leaf) port=$NATS_LEAF_PORT mon=$NATS_LEAF_MON
      extra="leafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:$NATS_HUB_LEAF_PORT\" } ], reconnect: 1 }" ;;
  esac
  local domain=""
  case "$u" in nats-hub) domain="domain: hub" ;; nats-leaf) domain="domain: leaf" ;; esac
  mkdir -p "$d/jetstream"
  cat >"$d/nats.conf" <<EOF
# Generated by tests/harness/harness.sh
server_name: $u
listen: "127.0.0.1:$port"
http: "127.0.0.1:$mon"
jetstream {
  store_dir: "$d/jetstream"
  max_memory_store: 256MB
  max_file_store: 8GB
  $domain
}
$extra
EOF
  command -v nats-server >/dev/null || { err "nats-server not found (apt-get install nats-server)"; return 1; }
  spawn "$u" nats-server -c "$d/nats.conf"
}
nats_mon_port() {
  case "$1" in nats-a) echo $NATS_A_MON ;; nats-b) echo $NATS_B_MON ;; nats-tls) echo $NATS_TLS_MON ;;
    nats-hub) echo $NATS_HUB_MON ;; nats-leaf) echo $NATS_LEAF_MON ;; esac
}
nats_ready() {
  local u=$1 mon; mon=$(nats_mon_port "$u")
  curl -sf -m 2 "http://127.0.0.1:$mon/healthz?js-enabled-only=true" >/dev/null || return 1
  case "$u" in
    nats-hub|nats-leaf) # JetStream in its own domain, and the leafnode link is up
      local dom=${u#nats-}
      curl -sf -m 2 "http://127.0.0.1:$mon/jsz" | grep -qE "\"domain\": *\"$dom\"" || return 1
      curl -sf -m 2 "http://127.0.0.1:$mon/leafz" | grep -qE '"leafnodes": *[1-9]' || return 1 ;;
  esac
}


# --- TLS material and the TLS/SASL brokers ------------------------------------------------------
# A throwaway CA, a server certificate for localhost / 127.0.0.1 (SANs; 127.0.0.2 is deliberately
# not named), a client certificate, and a second, unrelated CA that must be refused. Made with
# openssl when missing (kept until `down --wipe`), EC P-256 so it takes a fraction of a second.
tls_certs() {
  [ -s "$TLS_DIR/server.pem" ] && [ -s "$TLS_DIR/wrong-ca.pem" ] && return 0
  command -v openssl >/dev/null || { err "openssl not found (apt-get install openssl)"; return 1; }
  local t="$TLS_DIR.tmp.$$" out
  rm -rf "$t"; mkdir -p "$t"
  if ! out=$(
    exec 2>&1
    set -e
    cd "$t"
    ca() { # name subject
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -subj "$2" -keyout "$1.key" -out "$1.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    }
    leaf() { # name subject extensions
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$2" \
        -keyout "$1.key" -out "$1.csr"
      printf '%b' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
        -days 3650 -extfile "$1.ext" -out "$1.pem"
      rm -f "$1.csr" "$1.ext"
    }
    ca ca "/CN=mqdr harness CA"
    ca wrong-ca "/CN=mqdr harness unrelated CA"
    leaf server "/CN=localhost" \
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n'
    leaf client "/CN=mqdr-client" \
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
    cat server.key server.pem >server-keystore.pem   # Kafka's PEM key store: key, then chain
    rm -f wrong-ca.key
    chmod 600 ./*.key server-keystore.pem
  ); then
    err "making the TLS certificates failed: $out"; rm -rf "$t"; return 1
  fi
  # Several units may ask at once (they start in parallel): the first complete set wins.
  if [ -s "$TLS_DIR/server.pem" ]; then rm -rf "$t"; return 0; fi
  rm -rf "$TLS_DIR" && mv "$t" "$TLS_DIR"
  log "TLS certificates made in $TLS_DIR (ca.pem, server.pem, client.pem, wrong-ca.pem)"
}

kafka_tls_prepare() {
  local d; d=$(unit_dir kafka-tls)
  mkdir -p "$d/data"
  cat >"$d/server.properties" <<EOF
# Generated by tests/harness/harness.sh: kafka-tls (KRaft, one node), TLS and SASL listeners.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_TLS_CTRL
listeners=PLAINTEXT://127.0.0.1:$KAFKA_TLS_PLAIN,CONTROLLER://127.0.0.1:$KAFKA_TLS_CTRL,SSL://127.0.0.1:$KAFKA_TLS_SSL,SASL_SSL://127.0.0.1:$KAFKA_TLS_SASL,OTHERHOST://127.0.0.2:$KAFKA_TLS_OTHER
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_TLS_PLAIN,SSL://127.0.0.1:$KAFKA_TLS_SSL,SASL_SSL://127.0.0.1:$KAFKA_TLS_SASL,OTHERHOST://127.0.0.2:$KAFKA_TLS_OTHER
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,OTHERHOST:SSL
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/server-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
ssl.client.auth=none
listener.name.ssl.ssl.client.auth=required
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_PLAIN_USER="$KAFKA_PLAIN_PASS";
log.dirs=$d/data
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
EOF
  cat >"$d/log4j.properties" <<EOF
# Generated by tests/harness/harness.sh: WARN and above to a file in the node's directory.
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$d/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
EOF
  if [ ! -f "$d/data/meta.properties" ]; then
    # SCRAM credentials live in the KRaft metadata log; --add-scram writes them at format time.
    if ! "$JAVA" -Xms32m -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j.configuration="file:$d/log4j.properties" \
        -cp "$KAFKA_LIB_DIR/core/*" kafka.tools.StorageTool format -t "$KAFKA_TLS_CLUSTER_ID" \
        -c "$d/server.properties" --ignore-formatted \
        --add-scram "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASS]" \
        >>"$(unit_log kafka-tls)" 2>&1; then
      err "kafka-tls: formatting $d/data failed; see $(unit_log kafka-tls)"
      return 1
    fi
  fi
}
kafka_tls_start() {
  local d; d=$(unit_dir kafka-tls)
  mkdir -p "$d"
  tls_certs || return 1
  kafka_tls_prepare || return 1
  spawn kafka-tls "$JAVA" -Xms64m -Xmx384m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dkafka.logs.dir="$d" \
    -Dlog4j.configuration="file:$d/log4j.properties" \
    -cp "$KAFKA_LIB_DIR/core/*" kafka.Kafka "$d/server.properties"
}
kafka_tls_ready() { # the SCRAM user gets metadata over SASL_SSL, verifying the server with ca.pem
  if command -v kcat >/dev/null; then
    kcat -b "127.0.0.1:$KAFKA_TLS_SASL" -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 \
      -X "sasl.username=$KAFKA_SCRAM_USER" -X "sasl.password=$KAFKA_SCRAM_PASS" \
      -X "ssl.ca.location=$TLS_DIR/ca.pem" -L -m 3 -t __mqdr_harness_probe 2>/dev/null |
      grep -qE "^ *broker 1 at 127\.0\.0\.1:$KAFKA_TLS_SASL\b"
  else
    port_open "$KAFKA_TLS_SASL" && grep -q 'Kafka Server started' "$(unit_dir kafka-tls)/server.log" 2>/dev/null
  fi
}

nats_tls_start() {
  local d; d=$(unit_dir nats-tls)
  tls_certs || return 1
  mkdir -p "$d/jetstream"
  cat >"$d/nats.conf" <<EOF
# Generated by tests/harness/harness.sh: TLS with a required client certificate, token auth.
server_name: nats-tls
listen: "127.0.0.1:$NATS_TLS_PORT"
http: "127.0.0.1:$NATS_TLS_MON"
tls {
  cert_file: "$TLS_DIR/server.pem"
  key_file: "$TLS_DIR/server.key"
  ca_file: "$TLS_DIR/ca.pem"
  verify: true
  timeout: 3
}
authorization { token: "$NATS_TLS_TOKEN" }
jetstream {
  store_dir: "$d/jetstream"
  max_memory_store: 64MB
  max_file_store: 1GB
}
EOF
  command -v nats-server >/dev/null || { err "nats-server not found (apt-get install nats-server)"; return 1; }
  spawn nats-tls nats-server -c "$d/nats.conf"
}

# --- RabbitMQ ---------------------------------------------------------------------------------
# Environment shared by the server and the CLI tools of one node: a private Erlang cookie (HOME),
# a private epmd port, no system-wide rabbitmq-env.conf, and CLI distribution ports of our own
# (the CLI's default range, 35672-35682, would overlap rabbit-a's ports).
rabbit_env() { # node (a|b) -> env assignments, one per line
  local n=$1 u="rabbit-$1" d port mgmt dist
  d=$(unit_dir "$u")
  if [ "$n" = a ]; then port=$RABBIT_A_PORT mgmt=$RABBIT_A_MGMT dist=$RABBIT_A_DIST
  else port=$RABBIT_B_PORT mgmt=$RABBIT_B_MGMT dist=$RABBIT_B_DIST; fi
  cat <<EOF
HOME=$HDIR/rabbit-home
ERL_EPMD_PORT=$EPMD_PORT
ERL_EPMD_ADDRESS=127.0.0.1
RABBITMQ_CONF_ENV_FILE=$HDIR/rabbit-home/rabbitmq-env.conf
RABBITMQ_NODENAME=$u@localhost
RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
RABBITMQ_NODE_PORT=$port
RABBITMQ_DIST_PORT=$dist
RABBITMQ_MNESIA_BASE=$d/mnesia
RABBITMQ_LOG_BASE=$d/log
RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins
RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf
RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config
RABBITMQ_PID_FILE=$d/rabbitmq.pid
RABBITMQ_PLUGINS_EXPAND_DIR=$d/plugins-expand
ERL_CRASH_DUMP=$d/erl_crash.dump
RABBITMQ_CTL_DIST_PORT_MIN=$((dist + 6))
RABBITMQ_CTL_DIST_PORT_MAX=$((dist + 16))
RABBITMQ_CTL_ERL_ARGS=+sbwt none +sbwtdcpu none +sbwtdio none
EOF
}
rabbit_home() {
  local h="$HDIR/rabbit-home"
  mkdir -p "$h"
  : >"$h/rabbitmq-env.conf"
  if [ ! -s "$h/.erlang.cookie" ]; then
    (umask 077; head -c 30 /dev/urandom | sha256sum | cut -c1-32 | tr a-f A-F >"$h/.erlang.cookie")
  fi
  chmod 400 "$h/.erlang.cookie"
}
epmd_start() {
  command -v epmd >/dev/null || { err "epmd not found (it comes with erlang-base / rabbitmq-server)"; return 1; }
  ERL_EPMD_ADDRESS=127.0.0.1 spawn epmd epmd -port "$EPMD_PORT"
}
epmd_ready() { port_open "$EPMD_PORT"; }
rabbit_start() {
  local u=$1 n=${1#rabbit-} d port mgmt
  d=$(unit_dir "$u")
  if [ "$n" = a ]; then port=$RABBIT_A_PORT mgmt=$RABBIT_A_MGMT; else port=$RABBIT_B_PORT mgmt=$RABBIT_B_MGMT; fi
  [ -x "$RABBIT_SBIN/rabbitmq-server" ] || { err "$RABBIT_SBIN/rabbitmq-server not found (apt-get install rabbitmq-server)"; return 1; }
  mkdir -p "$d/mnesia" "$d/log"
  echo '[rabbitmq_management,rabbitmq_shovel,rabbitmq_shovel_management].' >"$d/enabled_plugins"
  echo '[].' >"$d/advanced.config"
  local tls_conf=""
  if [ "$n" = a ]; then # amqps with a required client certificate, on two loopback addresses
    tls_certs || return 1
    tls_conf="listeners.ssl.1 = 127.0.0.1:$RABBIT_A_TLS
listeners.ssl.2 = 127.0.0.2:$RABBIT_A_TLS_OTHER
ssl_options.cacertfile = $TLS_DIR/ca.pem
ssl_options.certfile = $TLS_DIR/server.pem
ssl_options.keyfile = $TLS_DIR/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true"
  fi
  cat >"$d/rabbitmq.conf" <<EOF
# Generated by tests/harness/harness.sh
listeners.tcp.default = 127.0.0.1:$port
$tls_conf
management.tcp.ip = 127.0.0.1
management.tcp.port = $mgmt
# Created when the node's database is first initialised.
default_user = $RABBIT_USER
default_pass = $RABBIT_PASS
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
loopback_users = none
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = info
EOF
  # Run the real script, not the Debian /usr/sbin wrapper (that one switches to the rabbitmq user).
  # +sbwt none...: no scheduler busy-waiting, six brokers share two cores.
  local -a envs
  mapfile -t envs < <(rabbit_env "$n")
  spawn "$u" env "${envs[@]}" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none -kernel inet_dist_use_interface {127,0,0,1}" \
    "$RABBIT_SBIN/rabbitmq-server"
}
rabbit_mgmt_port() { [ "$1" = rabbit-a ] && echo $RABBIT_A_MGMT || echo $RABBIT_B_MGMT; }
rabbit_ready() {
  local mgmt; mgmt=$(rabbit_mgmt_port "$1")
  curl -sf -m 3 -u "$RABBIT_USER:$RABBIT_PASS" "http://127.0.0.1:$mgmt/api/overview" >/dev/null
}
rabbit_post_ready() { # idempotent: vhost `orders` with full permissions for the mqdr user
  local mgmt base; mgmt=$(rabbit_mgmt_port "$1"); base="http://127.0.0.1:$mgmt/api"
  local -a put=(curl -sf -m 10 -u "$RABBIT_USER:$RABBIT_PASS" -X PUT -H 'content-type: application/json')
  "${put[@]}" "$base/vhosts/orders" -d '{}' >/dev/null &&
  "${put[@]}" "$base/permissions/orders/$RABBIT_USER" -d '{"configure":".*","write":".*","read":".*"}' >/dev/null &&
  curl -sf -m 10 -u "$RABBIT_USER:$RABBIT_PASS" "$base/aliveness-test/orders" | grep -q '"ok"' || return 1
  if [ "$1" = rabbit-a ]; then # the TLS tests' user (no management tag), and its amqps listeners
    "${put[@]}" "$base/users/$RABBIT_TLS_USER" -d "{\"password\":\"$RABBIT_TLS_PASS\",\"tags\":\"\"}" >/dev/null &&
    "${put[@]}" "$base/permissions/%2F/$RABBIT_TLS_USER" -d '{"configure":".*","write":".*","read":".*"}' >/dev/null &&
    "${put[@]}" "$base/permissions/orders/$RABBIT_TLS_USER" -d '{"configure":".*","write":".*","read":".*"}' >/dev/null || return 1
    if ! port_open "$RABBIT_A_TLS"; then
      err "rabbit-a has no amqps listener on $RABBIT_A_TLS (started by an older harness.sh?): restart it with 'harness.sh down rabbit-a && harness.sh up rabbit-a'"
      return 1
    fi
  fi
}
rabbit_cli() { # tool a|b args...
  local tool=$1 n=${2:-}; shift 2 || true
  case "$n" in a|b) ;; *) die "usage: harness.sh $tool a|b ARGS..." ;; esac
  rabbit_home
  local -a envs; mapfile -t envs < <(rabbit_env "$n")
  exec env "${envs[@]}" "$RABBIT_SBIN/$tool" -n "rabbit-$n@localhost" "$@"
}

# --- generic unit operations ------------------------------------------------------------------
unit_start() {
  case "$1" in
    kafka-tls) kafka_tls_start ;;
    nats-tls) nats_tls_start ;;
    kafka-*) kafka_start "$1" ;;
    nats-*) nats_start "$1" ;;
    rabbit-*) rabbit_start "$1" ;;
    epmd) epmd_start ;;
  esac
}
unit_ready() {
  case "$1" in
    kafka-tls) kafka_tls_ready ;;
    kafka-*) kafka_ready "$1" ;;
    nats-*) nats_ready "$1" ;;
    rabbit-*) rabbit_ready "$1" ;;
    epmd) epmd_ready ;;
  esac
}
unit_post_ready() {
  case "$1" in rabbit-*) rabbit_post_ready "$1" ;; *) return 0 ;; esac
}
show_failure() {
  local u=$1 f
  for f in $(unit_logs "$u"); do
    [ -f "$f" ] || continue
    err "$u: last lines of $f:"
    tail -n 25 "$f" | sed "s/^/  [$u] /" >&2
  done
}

# up_unit UNIT: start when not running, then wait (bounded) until really ready. A unit this call
# started that then fails is stopped and started once more: right after a kill -9, RabbitMQ now
# and then fails to open one of its listeners (CI saw rabbit-a come up without its amqps port).
up_unit() {
  local u=$1 rc=0
  up_unit_once "$u" || rc=$?
  if [ $rc = 2 ]; then
    err "$u: started but failed; stopping it and starting it once more"
    stop_unit "$u"
    local p i
    for p in $(unit_ports "$u"); do
      for ((i = 0; i < 100; i++)); do port_open "$p" || break; sleep 0.1; done
    done
    up_unit_once "$u" || return 1
    return 0
  fi
  return $rc
}
# Returns 0 when ready, 1 on failure, 2 on failure of a unit it started itself.
up_unit_once() {
  local u=$1 t0 started=0 p
  t0=$(now)
  if unit_alive "$u"; then
    if unit_ready "$u"; then unit_post_ready "$u" || true; log "$u: already up"; return 0; fi
  else
    for p in $(unit_ports "$u"); do
      if port_open "$p"; then
        err "$u: port $p is already in use by a process this harness did not start (ss -ltnp 'sport = :$p')"
        return 1
      fi
    done
    unit_start "$u" || { show_failure "$u"; return 1; }
    started=1
  fi
  local deadline=$(( $(date +%s) + READY_TIMEOUT )) failed=$((1 + started))
  while ! unit_ready "$u"; do
    if ! unit_alive "$u"; then
      err "$u: process exited before it was ready; logs in $(unit_dir "$u")"
      show_failure "$u"; return $failed
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      err "$u: not ready after ${READY_TIMEOUT}s; logs in $(unit_dir "$u")"
      show_failure "$u"; return $failed
    fi
    sleep 0.5
  done
  if ! unit_post_ready "$u"; then
    err "$u: ready, but its setup step failed; logs in $(unit_dir "$u")"; show_failure "$u"; return $failed
  fi
  if [ $started = 1 ]; then log "$u: ready in $(since "$t0")s"; else log "$u: ready after $(since "$t0")s"; fi
}

with_lock() { # serialise up/down/kill9 between concurrent callers (tests may call us in parallel)
  mkdir -p "$HDIR"
  exec 9>"$HDIR/.harness.lock"
  if ! flock -n 9; then
    log "waiting for another harness.sh (lock $HDIR/.harness.lock)"
    flock -w 600 9 || die "could not lock $HDIR/.harness.lock within 600s"
  fi
}

write_env_file() { cmd_env >"$HDIR/env.tmp" && mv "$HDIR/env.tmp" "$HDIR/env"; }

cmd_up() {
  [ $# -gt 0 ] || set -- default
  local -a units; mapfile -t units < <(expand_units "$@")
  if [ -n "${KAFKA_A_NODES:-}" ] && [ -f "$HDIR/kafka-a/nodes" ] &&
     [ "$(cat "$HDIR/kafka-a/nodes")" != "$KAFKA_A_NODES" ] && printf '%s\n' "${units[@]}" | grep -q '^kafka-a:'; then
    die "kafka-a was formatted with $(cat "$HDIR/kafka-a/nodes") node(s), KAFKA_A_NODES=$KAFKA_A_NODES; run '$HARNESS_SH down --wipe kafka-a' first"
  fi
  with_lock
  echo "$PO" >"$HDIR/port-offset"
  local t0; t0=$(now)
  local u need_kafka=0 need_rabbit=0
  for u in "${units[@]}"; do
    case "$u" in kafka-*) need_kafka=1 ;; rabbit-*) need_rabbit=1 ;; esac
  done
  [ $need_kafka = 1 ] && fetch_core
  # Certificates before the units start in parallel (each would otherwise make its own).
  if printf '%s\n' "${units[@]}" | grep -qxE 'kafka-tls|nats-tls|rabbit-a'; then
    tls_certs || die "no TLS certificates for the TLS listeners"
  fi
  if [ $need_rabbit = 1 ]; then
    rabbit_home
    up_unit epmd || die "the private epmd (port $EPMD_PORT) did not start"
  fi
  local -a pids=() names=()
  for u in "${units[@]}"; do
    [ "$u" = epmd ] && continue
    up_unit "$u" &
    pids+=($!) names+=("$u")
  done
  local i failed=()
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done
  write_env_file
  if [ ${#failed[@]} -gt 0 ]; then
    err "not ready: ${failed[*]} (after $(since "$t0")s); logs are kept under $HDIR"
    exit 1
  fi
  log "up: ${names[*]:-epmd} ready in $(since "$t0")s (state and logs in $HDIR)"
}

cmd_down() {
  local wipe=0
  if [ "${1:-}" = --wipe ]; then wipe=1; shift; fi
  with_lock
  local -a units
  if [ $# -eq 0 ]; then
    # everything: known units (with their pid files), then anything else carrying our tag
    mapfile -t units < <(
      { expand_units all 2>/dev/null || true
        find "$HDIR" -maxdepth 3 -name pid -type f 2>/dev/null | while read -r f; do
          f=${f#"$HDIR/"}; f=${f%/pid}
          case "$f" in kafka-*/node*) echo "${f%%/*}:${f##*/node}" ;; */*) ;; *) echo "$f" ;; esac
        done
      } | awk '!seen[$0]++')
  else
    mapfile -t units < <(expand_units "$@")
  fi
  local u pids=() stopped=()
  for u in "${units[@]}"; do
    [ "$u" = epmd ] && continue
    if unit_alive "$u"; then stopped+=("$u"); fi
    stop_unit "$u" &
    pids+=($!)
  done
  local p; for p in "${pids[@]}"; do wait "$p" || true; done
  if [ $# -eq 0 ] || printf '%s\n' "${units[@]}" | grep -qx epmd; then
    unit_alive epmd && stopped+=(epmd)
    stop_unit epmd
  fi
  if [ $# -eq 0 ]; then
    local stray
    stray=$(tagged_pids | tr '\n' ' ')
    if [ -n "${stray// /}" ]; then
      err "stopping stray processes started by this harness: $stray"
      # shellcheck disable=SC2086
      kill -KILL $stray 2>/dev/null || true
    fi
  fi
  log "down: ${stopped[*]:-nothing was running}"
  if [ $wipe = 1 ]; then
    if [ $# -eq 0 ]; then
      find "$HDIR" -mindepth 1 -maxdepth 1 ! -name kafka-lib ! -name .harness.lock ! -name .lock -exec rm -rf {} +
      log "wiped $HDIR (kept the jar cache $KAFKA_LIB_DIR)"
    else
      local c
      for c in "$@"; do
        case "$c" in
          kafka-a|kafka-b) rm -rf "${HDIR:?}/$c" ;;
          nats-native) rm -rf "${HDIR:?}/nats-hub" "${HDIR:?}/nats-leaf" ;;
          tls) rm -rf "${HDIR:?}/kafka-tls" "${HDIR:?}/nats-tls" "$(unit_dir rabbit-a)" "${TLS_DIR:?}" ;;
          default|all) die "use 'down --wipe' without components to wipe everything" ;;
          *) rm -rf "$(unit_dir "$c")" ;;
        esac
        log "wiped $c"
      done
    fi
  fi
  if [ -d "$HDIR" ]; then write_env_file; fi
}

cmd_kill9() {
  [ $# -gt 0 ] || die "usage: harness.sh kill9 COMPONENT..."
  with_lock
  local u
  for u in $(expand_units "$@"); do
    if unit_alive "$u"; then stop_unit "$u" KILL; log "$u: killed (SIGKILL)"; else log "$u: was not running"; fi
  done
}

cmd_status() {
  local -a units
  if [ $# -eq 0 ]; then
    mapfile -t units < <(expand_units default; for u in nats-hub nats-leaf kafka-tls nats-tls epmd; do
      [ -f "$(unit_pidfile "$u")" ] && echo "$u"; done)
  else
    mapfile -t units < <(expand_units "$@")
  fi
  local u rc=0 state
  printf '%-12s %-8s %-7s %-8s %s\n' UNIT PID STATE READY PORTS
  for u in "${units[@]}"; do
    local pid="-" ready=no
    if pid=$(unit_pid "$u"); then state=running; else pid="-" state=stopped; fi
    if [ $state = running ] && unit_ready "$u"; then ready=yes; else rc=1; fi
    printf '%-12s %-8s %-7s %-8s %s\n' "$u" "$pid" "$state" "$ready" "$(unit_ports "$u")"
  done
  return $rc
}

cmd_running() { # the units whose process runs, one per line
  local u
  for u in $(expand_units all epmd); do unit_alive "$u" && echo "$u"; done
  return 0
}

cmd_env() {
  local ra="amqp://$RABBIT_USER:$RABBIT_PASS@127.0.0.1:$RABBIT_A_PORT"
  local rb="amqp://$RABBIT_USER:$RABBIT_PASS@127.0.0.1:$RABBIT_B_PORT"
  cat <<EOF
export MQDR_HARNESS_DIR='$HDIR'
export MQDR_HARNESS_SH='$HARNESS_SH'
export MQDR_HARNESS_PORT_OFFSET='$PO'
export MQDR_KAFKA_A='$(kafka_bootstrap kafka-a)'
export MQDR_KAFKA_A_NODES='$(kafka_nodes kafka-a)'
export MQDR_KAFKA_B='$(kafka_bootstrap kafka-b)'
export MQDR_NATS_A='nats://127.0.0.1:$NATS_A_PORT'
export MQDR_NATS_A_MONITOR='http://127.0.0.1:$NATS_A_MON'
export MQDR_NATS_B='nats://127.0.0.1:$NATS_B_PORT'
export MQDR_NATS_B_MONITOR='http://127.0.0.1:$NATS_B_MON'
export MQDR_NATS_HUB='nats://127.0.0.1:$NATS_HUB_PORT'
export MQDR_NATS_HUB_MONITOR='http://127.0.0.1:$NATS_HUB_MON'
export MQDR_NATS_LEAF='nats://127.0.0.1:$NATS_LEAF_PORT'
export MQDR_NATS_LEAF_MONITOR='http://127.0.0.1:$NATS_LEAF_MON'
export MQDR_RABBIT_A='$ra'
export MQDR_RABBIT_A_MGMT='http://127.0.0.1:$RABBIT_A_MGMT'
export MQDR_RABBIT_B='$rb'
export MQDR_RABBIT_B_MGMT='http://127.0.0.1:$RABBIT_B_MGMT'
export MQDR_RABBIT_USER='$RABBIT_USER'
export MQDR_RABBIT_PASSWORD='$RABBIT_PASS'
export MQDR_TLS_DIR='$TLS_DIR'
export MQDR_TLS_CA='$TLS_DIR/ca.pem'
export MQDR_TLS_WRONG_CA='$TLS_DIR/wrong-ca.pem'
export MQDR_TLS_CLIENT_CERT='$TLS_DIR/client.pem'
export MQDR_TLS_CLIENT_KEY='$TLS_DIR/client.key'
export MQDR_KAFKA_TLS_PLAINTEXT='127.0.0.1:$KAFKA_TLS_PLAIN'
export MQDR_KAFKA_TLS_SSL='127.0.0.1:$KAFKA_TLS_SSL'
export MQDR_KAFKA_TLS_SASL_SSL='127.0.0.1:$KAFKA_TLS_SASL'
export MQDR_KAFKA_TLS_OTHER_HOST='127.0.0.2:$KAFKA_TLS_OTHER'
export MQDR_KAFKA_SCRAM_USER='$KAFKA_SCRAM_USER'
export MQDR_KAFKA_SCRAM_PASSWORD='$KAFKA_SCRAM_PASS'
export MQDR_KAFKA_PLAIN_USER='$KAFKA_PLAIN_USER'
export MQDR_KAFKA_PLAIN_PASSWORD='$KAFKA_PLAIN_PASS'
export MQDR_NATS_TLS='tls://127.0.0.1:$NATS_TLS_PORT'
export MQDR_NATS_TLS_MONITOR='http://127.0.0.1:$NATS_TLS_MON'
export MQDR_NATS_TLS_TOKEN='$NATS_TLS_TOKEN'
export MQDR_RABBIT_A_TLS='amqps://127.0.0.1:$RABBIT_A_TLS'
export MQDR_RABBIT_A_TLS_OTHER_HOST='amqps://127.0.0.2:$RABBIT_A_TLS_OTHER'
export MQDR_RABBIT_TLS_USER='$RABBIT_TLS_USER'
export MQDR_RABBIT_TLS_PASSWORD='$RABBIT_TLS_PASS'
EOF
}

cmd_logs() {
  local -a units
  if [ $# -eq 0 ]; then mapfile -t units < <(expand_units all epmd); else mapfile -t units < <(expand_units "$@"); fi
  local u f
  for u in "${units[@]}"; do
    for f in $(unit_logs "$u"); do
      [ -s "$f" ] || continue
      echo "===== $u: $f (last ${MQDR_LOG_LINES:-40} lines) ====="
      tail -n "${MQDR_LOG_LINES:-40}" "$f"
    done
  done
}

cmd_classpath() {
  case "${1:-}" in
    core) fetch_core >&2 ;;
    mirror|tools) fetch_bench >&2 ;;
    *) die "usage: harness.sh classpath core|mirror|tools" ;;
  esac
  echo "$KAFKA_LIB_DIR/$1/*"
}

usage() { sed -n '2,22p' "$HARNESS_SH" | sed 's/^# \{0,1\}//'; }

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case "${KAFKA_A_NODES:-1}" in 1|2|3) ;; *) die "KAFKA_A_NODES must be 1, 2 or 3, not '$KAFKA_A_NODES'" ;; esac
  case "$cmd" in
    up|down|kill9|status|logs) local a; for a in "$@"; do [ "$a" = --wipe ] || check_components "$a"; done ;;
  esac
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    kill9) cmd_kill9 "$@" ;;
    status) cmd_status "$@" ;;
    running) cmd_running ;;
    env) cmd_env ;;
    logs) cmd_logs "$@" ;;
    fetch) mkdir -p "$HDIR"; fetch_core ;;
    fetch-bench) mkdir -p "$HDIR"; fetch_bench ;;
    classpath) cmd_classpath "$@" ;;
    rabbitmqctl|rabbitmq-diagnostics|rabbitmq-plugins|rabbitmq-queues) rabbit_cli "$cmd" "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}
main "$@"
