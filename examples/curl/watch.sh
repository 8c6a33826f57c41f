#!/usr/bin/env sh
# Watch a service: print its instances now, then again each time they change. Blocking queries (X-Index sent back
# as index): each request waits on the server until the answer may have changed, so nothing polls.
# Usage: watch.sh <name> [answers]   stops after that many answers (default: runs until interrupted)
set -eu
HD_URL=${HD_URL:-http://127.0.0.1:8500}
name=${1:?usage: watch.sh <name> [answers]}
left=${2:-0}
headers=$(mktemp)
trap 'rm -f "$headers"' EXIT
trap 'exit 130' INT TERM # sh runs the EXIT trap on exit, not when a signal ends it

index=0 # no index yet: the first answer comes at once
last=""
while :; do
  if [ "$index" = 0 ]; then blocking=""; else blocking="index=$index&wait=5m"; fi
  body=$(curl -sS --fail-with-body -G -D "$headers" "$HD_URL/v1/services?$blocking" --data-urlencode "name=$name")
  index=$(tr -d '\r' <"$headers" | awk -F': *' 'tolower($1) == "x-index" { print $2 }')
  # A wake can bring the same answer (another change to the name) and a wait that ran out always does.
  if [ "$body" != "$last" ]; then
    echo "$body"
    last=$body
    left=$((left - 1))
    [ "$left" = 0 ] && exit 0
  fi
done
