#!/bin/sh
# Cluster mode on one machine: one etcd member and two homelab-discovery nodes, all on loopback. Registers a
# service on node A, resolves it through node B's DNS and API, stops A, and shows B dropping it.
# Needs: etcd (Debian: etcd-server), curl, dig (dnsutils), a built checkout (npm ci). Run from the repo root:
#   sh examples/cluster/two-nodes.sh
# Ports (change them if taken): etcd 127.0.0.1:23790/23800, A 8510 (API) 8610 (DNS), B 8520 / 8620.
set -eu
work=$(mktemp -d)
pids=""
# Nodes first (they leave the cluster cleanly), etcd last.
cleanup() {
  rev=""; for p in $pids; do rev="$p $rev"; done
  for p in $rev; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

etcd --name n1 --data-dir "$work/etcd" \
  --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster n1=http://127.0.0.1:23800 --initial-cluster-state new \
  --auto-compaction-mode periodic --auto-compaction-retention 1h >"$work/etcd.log" 2>&1 &
pids="$pids $!"
until curl -sf http://127.0.0.1:23790/health >/dev/null; do sleep 0.1; done

node_up() { # name api-port dns-port
  node dist/src/main.js --store etcd --etcd-endpoints http://127.0.0.1:23790 --node-id "$1" \
    --http-listen "127.0.0.1:$2" --dns-listen "127.0.0.1:$3" --data-dir "$work/$1" --log-level warn &
  pids="$pids $!"
  # The API answers at once; the node has joined once its status says the cluster is ok.
  until curl -sf "http://127.0.0.1:$2/v1/status" | grep -q '"cluster":{"state":"ok"'; do sleep 0.1; done
}
node_up node-a 8510 8610
node_up node-b 8520 8620
a_pid=$(echo $pids | awk '{print $2}')

echo "== register web-1 on node A"
curl -s -X PUT http://127.0.0.1:8510/v1/services/web-1 -H 'Content-Type: application/json' \
  -d '{"name":"web","address":"10.0.0.5","port":8080,"tags":["prod"]}'
echo
# Propagation takes milliseconds; wait for it (at most 5 s) rather than guess.
for i in $(seq 50); do [ -n "$(dig +short @127.0.0.1 -p 8620 web.service.home.arpa)" ] && break; sleep 0.1; done
echo "== node B's DNS"
dig +short @127.0.0.1 -p 8620 web.service.home.arpa
dig +short @127.0.0.1 -p 8620 SRV _web._tcp.service.home.arpa
echo "== node B's API"
curl -s 'http://127.0.0.1:8520/v1/services?name=web'
echo
echo "== a write through B runs on its owner, A"
curl -s -D - -o /dev/null -X PUT http://127.0.0.1:8520/v1/services/web-1/maintenance \
  -H 'Content-Type: application/json' -d '{"enable":false}' | grep -i '^x-hd-owner'
echo "== node B's view of the cluster"
curl -s http://127.0.0.1:8520/v1/status
echo
echo "== stop node A (SIGTERM: it leaves and revokes its lease)"
kill "$a_pid"
wait "$a_pid" 2>/dev/null || true
for i in $(seq 50); do [ -z "$(dig +short @127.0.0.1 -p 8620 web.service.home.arpa)" ] && break; sleep 0.1; done
echo "== node B's DNS after A left (empty)"
dig +short @127.0.0.1 -p 8620 web.service.home.arpa
