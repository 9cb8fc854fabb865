#!/usr/bin/env python3
"""Seeds the demo's primaries (config/demo.yaml) with something to mirror, standard library only.

  NATS     stream ORDERS (subjects orders.>) on nats-east, via the JetStream API, and N messages
  RabbitMQ exchange 'orders' (topic) and queue 'orders.audit' in vhost 'orders' on rabbit-east,
           via the management API, and N messages
Kafka is seeded by scripts/demo.sh (topic creation needs Kafka's own tools, produce uses kcat).

Usage: demo_seed.py [--messages N] [--nats HOST:PORT] [--rabbit-mgmt URL] [--user U --password P]
Idempotent: existing streams, exchanges and queues are kept.
"""
import argparse
import base64
import json
import socket
import sys
import urllib.error
import urllib.request


def nats_seed(hostport, messages):
    host, port = hostport.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    f = sock.makefile("rb")
    info = f.readline()
    if not info.startswith(b"INFO"):
        sys.exit(f"demo_seed: {hostport} does not speak NATS: {info!r}")
    sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"name":"mqdr-demo-seed"}\r\n')
    sock.sendall(b"SUB _INBOX.seed 1\r\n")

    def request(subject, payload):
        body = payload.encode()
        sock.sendall(f"PUB {subject} _INBOX.seed {len(body)}\r\n".encode() + body + b"\r\n")
        sock.sendall(b"PING\r\n")
        while True:
            line = f.readline()
            if not line:
                sys.exit("demo_seed: NATS closed the connection")
            if line.startswith(b"MSG"):
                size = int(line.split()[-1])
                data = f.read(size + 2)[:-2]
                return json.loads(data)
            if line.startswith(b"-ERR"):
                sys.exit(f"demo_seed: NATS said {line!r}")
            if line.startswith(b"PING"):
                sock.sendall(b"PONG\r\n")

    stream = {"name": "ORDERS", "subjects": ["orders.>"], "storage": "file",
              "retention": "limits", "max_age": 7 * 24 * 3600 * 10**9, "num_replicas": 1,
              "duplicate_window": 120 * 10**9}
    reply = request("$JS.API.STREAM.CREATE.ORDERS", json.dumps(stream))
    err = reply.get("error")
    if err and err.get("err_code") != 10058:  # 10058: stream name already in use
        sys.exit(f"demo_seed: cannot create stream ORDERS: {err}")
    acked = 0
    for i in range(messages):
        r = request(f"orders.created.{i % 4}", json.dumps({"order": i, "source": "demo"}))
        if r.get("error"):
            sys.exit(f"demo_seed: publish to ORDERS failed: {r['error']}")
        acked += 1
    sock.close()
    print(f"demo_seed: NATS {hostport}: stream ORDERS, {acked} messages acknowledged")


def rabbit_seed(mgmt, user, password, messages):
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def call(method, path, body=None):
        req = urllib.request.Request(mgmt.rstrip("/") + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": auth,
                                              "content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                text = resp.read()
                return json.loads(text) if text else {}
        except urllib.error.HTTPError as e:
            sys.exit(f"demo_seed: RabbitMQ {method} {path}: HTTP {e.code} {e.read()[:200]!r}")

    call("PUT", "/api/exchanges/orders/orders", {"type": "topic", "durable": True})
    call("PUT", "/api/queues/orders/orders.audit", {"durable": True})
    call("POST", "/api/bindings/orders/e/orders/q/orders.audit", {"routing_key": "#"})
    routed = 0
    for i in range(messages):
        r = call("POST", "/api/exchanges/orders/orders/publish",
                 {"properties": {"delivery_mode": 2, "content_type": "application/json"},
                  "routing_key": f"orders.created.{i % 4}",
                  "payload": json.dumps({"order": i, "source": "demo"}),
                  "payload_encoding": "string"})
        routed += 1 if r.get("routed") else 0
    print(f"demo_seed: RabbitMQ {mgmt}: exchange orders, queue orders.audit, {routed} messages routed")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--nats", default="127.0.0.1:14222")
    ap.add_argument("--rabbit-mgmt", default="http://127.0.0.1:35673")
    ap.add_argument("--user", default="mqdr")
    ap.add_argument("--password", default="mqdr-secret")
    a = ap.parse_args()
    nats_seed(a.nats, a.messages)
    rabbit_seed(a.rabbit_mgmt, a.user, a.password, a.messages)


if __name__ == "__main__":
    main()
