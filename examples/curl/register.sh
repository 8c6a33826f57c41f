#!/usr/bin/env sh
# Register (or replace) an instance from a shell. Set HD_URL and, if the server has one, HD_ADMIN_TOKEN.
set -eu
HD_URL=${HD_URL:-http://127.0.0.1:8500}
auth=${HD_ADMIN_TOKEN:+Authorization: Bearer $HD_ADMIN_TOKEN}

curl -sS --fail-with-body -X PUT "$HD_URL/v1/services/web-api-1" \
  -H 'Content-Type: application/json' ${auth:+-H "$auth"} \
  -d '{
    "name": "web-api",
    "version": "1.2.0",
    "address": "10.0.1.10",
    "port": 8080,
    "tags": ["production", "eu"],
    "metadata": {"team": "platform"}
  }'
echo
