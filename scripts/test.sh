#!/usr/bin/env bash
# The test command: every test of the workspace (unit, integration, property,
# conformance, crash and doc tests). The PostgreSQL backend's tests run against a
# throwaway cluster that scripts/with-postgres.sh starts (installing Debian's
# postgresql package when it is missing) and removes afterwards; set
# TENURE_TEST_POSTGRES_URL to use an existing database instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES="${PROPTEST_CASES:-64}"
exec scripts/with-postgres.sh cargo test --workspace "$@"
