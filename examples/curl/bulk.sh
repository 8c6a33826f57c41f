#!/usr/bin/env sh
# Register and deregister several instances in one all-or-nothing call.
set -eu
HD_URL=${HD_URL:-http://127.0.0.1:8500}
auth=${HD_ADMIN_TOKEN:+Authorization: Bearer $HD_ADMIN_TOKEN}

curl -sS --fail-with-body -X POST "$HD_URL/v1/services/bulk" \
  -H 'Content-Type: application/json' ${auth:+-H "$auth"} \
  -d '{
    "register": [
      {"id": "nas", "name": "nas", "address": "192.168.1.20", "port": 445, "tags": ["smb"]},
      {"id": "printer", "name": "printer", "address": "192.168.1.30", "port": 631}
    ],
    "deregister": []
  }'
echo
