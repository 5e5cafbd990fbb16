#!/usr/bin/env sh
# Calls every SDK surface of a running gitflags server serving the template
# repository (`gitflags` or `go run ./cmd/gitflags` in another terminal, in
# the same directory).
# Usage: examples/curl.sh [BASE_URL] [CLIENT_KEY]
# CLIENT_KEY defaults to the production client key of the embedded default
# repository in .gitflags-data/flags (every repository has keys of its own).
set -eu
BASE=${1:-http://127.0.0.1:8080}
ENV_FILE=.gitflags-data/flags/environments/production/environment.json
if [ $# -ge 2 ]; then
  KEY=$2
elif [ -f "$ENV_FILE" ]; then
  KEY=$(sed -n 's/.*"client_key": *"\([^"]*\)".*/\1/p' "$ENV_FILE")
else
  echo "usage: $0 [BASE_URL] CLIENT_KEY (no $ENV_FILE here to read the key from)" >&2
  exit 2
fi

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
