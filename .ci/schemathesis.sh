#!/usr/bin/env bash
# Runs schemathesis against /openapi.json on a live server (the tenure-http serve
# example, in-memory store, loopback only), once as an administrator and once as
# a user, with a bounded number of examples per operation. Fails on any 5xx and on
# any response that does not match the document.
set -euo pipefail
cd "$(dirname "$0")/.."

# Built artefacts live where cargo puts them: CARGO_TARGET_DIR when it is set.
target_dir="${CARGO_TARGET_DIR:-target}"
venv="$target_dir/ci-venv"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis>=4,<5"
fi

cargo build --quiet -p tenure-http --example serve
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
log=$(mktemp)
TENURE_ADMIN_TOKEN=ci-admin-token "$target_dir/debug/examples/serve" "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 50); do
  grep -q "listening on" "$log" && break
  sleep 0.2
done
user_token=$(sed -n 's/^user access token: //p' "$log")
[ -n "$user_token" ] || { echo "the server did not start:"; cat "$log"; exit 1; }

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
run() {
  "$venv/bin/schemathesis" "${config[@]}" run "http://127.0.0.1:$port/openapi.json" \
    --checks "$checks" --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" \
    --phases examples,coverage,fuzzing --seed 7 --no-color --warnings off "$@"
}
config=()
echo "-- as an administrator, any zone"
run -H "Authorization: Bearer ci-admin-token"
config=(--config-file .ci/schemathesis.toml)
echo "-- as an administrator, in the seeded zone"
run -H "Authorization: Bearer ci-admin-token"
echo "-- as a user of the seeded zone"
run -H "Authorization: Bearer $user_token" --include-tag auth-grants --include-path /zones/{zone_id}/device/approve
