#!/usr/bin/env sh
# Remove an instance by id.
set -eu
HD_URL=${HD_URL:-http://127.0.0.1:8500}
auth=${HD_ADMIN_TOKEN:+Authorization: Bearer $HD_ADMIN_TOKEN}

curl -sS --fail-with-body -X DELETE "$HD_URL/v1/services/${1:-web-api-1}" ${auth:+-H "$auth"}
echo
