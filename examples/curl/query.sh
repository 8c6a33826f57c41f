#!/usr/bin/env sh
# Query instances: by name, version range, tags (all must match), health, node and metadata.
set -eu
HD_URL=${HD_URL:-http://127.0.0.1:8500}

curl -sS --fail-with-body -G "$HD_URL/v1/services" \
  --data-urlencode 'name=web-api' \
  --data-urlencode 'version=^1.2' \
  --data-urlencode 'tag=production' \
  --data-urlencode 'health=healthy' \
  --data-urlencode 'meta.team=platform'
echo
