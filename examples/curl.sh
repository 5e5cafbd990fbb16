#!/usr/bin/env sh
# Calls every SDK surface of a running gitflags server serving the template
# repository (`go run ./cmd/gitflags` in another terminal).
# Usage: examples/curl.sh [BASE_URL] [CLIENT_KEY]
set -eu
BASE=${1:-http://127.0.0.1:8080}
KEY=${2:-prd_Vn4sT8wQ1zLk6PjH9rXc}   # the template's production client key

echo "# Environment flags (Flagsmith SDK API)"
curl -fsS -H "X-Environment-Key: $KEY" "$BASE/api/v1/flags/?feature=api_rate_limit"; echo

echo "# An identity with traits: staff get a higher rate limit"
curl -fsS -H "X-Environment-Key: $KEY" -H 'Content-Type: application/json' \
  -d '{"identifier": "dev1", "traits": [{"trait_key": "email", "trait_value": "dev1@acme.example"}], "transient": true}' \
  "$BASE/api/v1/identities/" | grep -o '"name":"api_rate_limit"[^}]*}[^}]*"feature_state_value":[0-9]*' | sed 's/.*"feature_state_value"/api_rate_limit feature_state_value/'

echo "# One flag over OFREP"
curl -fsS -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"context": {"targetingKey": "qa@acme.example"}}' "$BASE/ofrep/v1/evaluate/flags/new_checkout"; echo

echo "# All flags over OFREP, then again with the ETag: 304"
ETAG=$(curl -fsS -o /dev/null -D - -H "Authorization: Bearer $KEY" -d '{"context": {"targetingKey": "u1", "plan": "pro"}}' \
  "$BASE/ofrep/v1/evaluate/flags" | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r')
curl -sS -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $KEY" -H "If-None-Match: $ETAG" \
  -d '{"context": {"targetingKey": "u1", "plan": "pro"}}' "$BASE/ofrep/v1/evaluate/flags"
