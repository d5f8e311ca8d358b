#!/usr/bin/env bash
# Load over loopback HTTP: `tenure serve` (release build) on one backend, wrk
# driving introspection and refresh, as the store fills set by set.
#
#   scripts/http-load.sh [memory|sled|redb|postgres] [SETS] [GRANTS_PER_SET] [SECONDS]
#
# Defaults: memory, 5 sets of 10000 grants, 5 seconds per run. For each set the
# script creates the set's grants (python3 over keep-alive connections), then runs
# wrk for SECONDS with 2 threads and 32 connections:
#
# - introspection of a random live access token of every set so far;
# - refresh of the set's refresh tokens, each thread rotating its own share (a
#   token is presented once; the rotated one joins the thread's queue).
#
# It prints requests per second and p50, p99, p99.9 and max latency in ms. wrk
# comes from Debian's package (installed with apt-get when missing); postgres runs
# under scripts/with-postgres.sh. TENURE_LOAD_ENV may hold extra environment for
# the server, e.g. TENURE_LOAD_ENV="LD_PRELOAD=..." to try another allocator, and
# TENURE_LOAD_BIN another build of the binary to compare (default: the release
# build, built first).
set -euo pipefail
cd "$(dirname "$0")/.."

backend="${1:-memory}"
sets="${2:-5}"
per_set="${3:-10000}"
seconds="${4:-5}"

if [[ "$backend" == postgres && -z "${TENURE_TEST_POSTGRES_URL:-}" ]]; then
  exec scripts/with-postgres.sh "$0" "$@"
fi
if ! command -v wrk >/dev/null; then
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

target_dir="${CARGO_TARGET_DIR:-target}"
binary="${TENURE_LOAD_BIN:-$target_dir/release/tenure}"
[[ -n "${TENURE_LOAD_BIN:-}" ]] || cargo build --quiet --release -p tenure-cli
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
url="http://127.0.0.1:$port"
zone=load
client=load-client
TENURE_ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
export TENURE_ADMIN_TOKEN

case "$backend" in
  memory) store=(--memory) ;;
  sled) store=(--data "$work/sled") ;;
  redb) store=(--redb "$work/redb") ;;
  # The URL (it may hold a password) goes by the environment, not the command line.
  postgres)
    store=()
    export TENURE_POSTGRES_URL="$TENURE_TEST_POSTGRES_URL"
    TENURE_CURSOR_KEY=$(python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')
    export TENURE_CURSOR_KEY ;;
  *) echo "unknown backend: $backend" >&2; exit 2 ;;
esac

env ${TENURE_LOAD_ENV:-} RUST_LOG="${RUST_LOG:-warn}" \
  "$binary" ${store[@]+"${store[@]}"} serve --addr "127.0.0.1:$port" --sweep-interval 0 \
  >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fs "$url/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$url/healthz" >/dev/null || { echo "the server did not start:"; cat "$work/server.log"; exit 1; }

curl -fsS -o /dev/null -X POST "$url/zones/$zone/clients" \
  -H "Authorization: Bearer $TENURE_ADMIN_TOKEN" -H "Content-Type: application/json" \
  -d "{\"id\":\"$client\",\"name\":\"Load\",\"client_type\":\"public\",\"allowed_scopes\":[\"read\",\"write\"],\"allowed_grants\":[\"authorization_code\",\"refresh_token\"]}"

run() {
  local script=$1 tokens=$2; shift 2
  wrk -t2 -c32 -d"${seconds}s" --timeout 10s -s "scripts/load/$script.lua" "$url" -- "$tokens" "$zone" "$@" \
    | sed -n 's/^RESULT //p'
}

echo "tenure serve on $backend over loopback HTTP: wrk 2 threads, 32 connections, ${seconds} s a run"
printf '%-8s %9s | %-44s | %s\n' "" "" "introspect" "refresh"
printf '%-8s %9s | %8s %7s %7s %7s %7s | %8s %7s %7s %7s %7s\n' \
  set grants req/s p50 p99 p99.9 max req/s p50 p99 p99.9 max
: >"$work/all"
for set in $(seq 1 "$sets"); do
  python3 scripts/load/grants.py "$url" "$zone" TENURE_ADMIN_TOKEN "$client" \
    $(((set - 1) * per_set)) "$per_set" "$work/set"
  cat "$work/set" >>"$work/all"
  read -r i_rps i_p50 i_p99 i_p999 i_max i_err _ < <(run introspect "$work/all")
  read -r r_rps r_p50 r_p99 r_p999 r_max r_err _ < <(run refresh "$work/set" "$client" 2)
  if [[ "$i_err" != 0 || "$r_err" != 0 ]]; then
    echo "errors: introspect $i_err, refresh $r_err" >&2
    exit 1
  fi
  printf '%-8s %9s | %8s %7s %7s %7s %7s | %8s %7s %7s %7s %7s\n' \
    "$set" $((set * per_set)) "$i_rps" "$i_p50" "$i_p99" "$i_p999" "$i_max" \
    "$r_rps" "$r_p50" "$r_p99" "$r_p999" "$r_max"
done
echo "latencies in ms; $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d)"
