#!/bin/sh
# Usage: bench/run.sh <http-query|registry-scale|dns|dns-churn|dns-routing|dns-handler|dns-big|hostile|docker|events|all> [options]: compiles bench/ (and the src it imports) into dist/, then runs it.
set -e; cd "$(dirname "$0")/.."; npx tsc -p bench/tsconfig.json
if [ "$1" = all ]; then shift; node dist/bench/registry-scale.js; exec node dist/bench/http-query.js "$@"; fi
script="$1"; shift; exec node "dist/bench/$script.js" "$@"
