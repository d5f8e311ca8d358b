#!/usr/bin/env bash
# What a client sees when PostgreSQL goes away under `tenure serve`: starts a
# server on a fresh database (scripts/with-postgres.sh), registers a client, kills
# every PostgreSQL process, then prints the status, Retry-After and body of an
# admin read, a list, the token endpoint and introspection. Each should be 503
# with Retry-After, never 500.
#
#   scripts/postgres-outage.sh            # builds the debug binary first
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${TENURE_TEST_POSTGRES_URL:-}" ]]; then
    cargo build -q -p tenure-cli
    exec scripts/with-postgres.sh "$0" "$@"
fi

ADDR=127.0.0.1:18099
PORT=$(sed -E 's|.*:([0-9]+)/.*|\1|' <<<"$TENURE_TEST_POSTGRES_URL")
TENURE_ADMIN_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
TENURE_CURSOR_KEY=$(head -c32 /dev/urandom | base64)
export TENURE_ADMIN_TOKEN TENURE_CURSOR_KEY
export TENURE_POSTGRES_URL="$TENURE_TEST_POSTGRES_URL"
LOG=$(mktemp)
target/debug/tenure serve --addr "$ADDR" --sweep-interval 0 --postgres-wait-timeout 2 \
    >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do curl -sf "$ADDR/healthz" >/dev/null && break; sleep 0.1; done

admin=(-H "Authorization: Bearer $TENURE_ADMIN_TOKEN")
curl -s -o /dev/null -w "register a client: %{http_code}\n" "${admin[@]}" \
    -H 'content-type: application/json' -d '{"id":"c1","name":"C","allowed_scopes":["read"]}' \
    "$ADDR/zones/z/clients"

pkill -9 -f "postgres.*-p $PORT" || true
sleep 1
echo "PostgreSQL killed"

show() {
    local what=$1
    shift
    echo "$what:"
    curl -s -D - -o /dev/stdout "$@" | grep -aiE '^HTTP|^retry-after|^\{' | sed 's/^/  /'
}
show "GET a client" "${admin[@]}" "$ADDR/zones/z/clients/c1"
show "GET delegated grants" "${admin[@]}" "$ADDR/zones/z/delegated-grants"
show "POST oauth/token" -d 'grant_type=refresh_token&refresh_token=x&client_id=c1' \
    "$ADDR/zones/z/oauth/token"
show "POST oauth/introspect" "${admin[@]}" -d 'token=x' "$ADDR/zones/z/oauth/introspect"
