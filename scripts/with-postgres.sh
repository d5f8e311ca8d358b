#!/usr/bin/env bash
# Runs a command with TENURE_TEST_POSTGRES_URL pointing at a PostgreSQL database.
#
#   scripts/with-postgres.sh cargo test -p tenure-postgres
#
# If TENURE_TEST_POSTGRES_URL is already set, the command runs against that database
# and nothing else happens. Otherwise the script starts a throwaway cluster:
#
# - Debian's `postgresql` package is installed with apt-get when no `initdb` is found
#   (in /usr/lib/postgresql/*/bin, or on PATH);
# - `initdb` runs into a fresh temporary directory with a random password, as an
#   unprivileged user (PostgreSQL refuses to run as root: as root the script uses the
#   `postgres` system user, creating it if needed);
# - the server listens on a free port of 127.0.0.1 only, with its Unix socket inside
#   the temporary directory, and durability switched off (the data is thrown away);
# - a database is created, the command runs, and on exit (success, failure or
#   interrupt) the server is stopped and the directory removed.
#
# The command's exit code is the script's.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

if [[ -n "${TENURE_TEST_POSTGRES_URL:-}" ]]; then
    exec "$@"
fi

log() { echo "with-postgres: $*" >&2; }

# The bin directory of the newest installed server (one that has initdb), or nothing.
find_bin() {
    local dir found=()
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
            found+=("$dir")
        fi
    done
    if [[ ${#found[@]} -gt 0 ]]; then
        printf '%s\n' "${found[@]}" | sort -V | tail -n 1
        return
    fi
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
    fi
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        log "cannot install PostgreSQL: not root and no password-less sudo."
        log "install Debian's postgresql package, or set TENURE_TEST_POSTGRES_URL."
        exit 1
    fi
}

PG_BIN=$(find_bin)
if [[ -z "$PG_BIN" ]]; then
    log "no initdb found; installing Debian's postgresql package"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        postgresql >&2
    PG_BIN=$(find_bin)
    if [[ -z "$PG_BIN" ]]; then
        log "postgresql was installed but no initdb was found under /usr/lib/postgresql"
        exit 1
    fi
fi

# Who runs the server: ourselves, or an unprivileged system user when we are root.
RUN_AS=()
if [[ $(id -u) -eq 0 ]]; then
    PG_USER=postgres
    if ! id -u "$PG_USER" >/dev/null 2>&1; then
        log "creating the system user $PG_USER"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$PG_USER"
    fi
    RUN_AS=(runuser -u "$PG_USER" --)
fi

TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tenure-pg.XXXXXXXX")
DATA_DIR="$TMP_DIR/data"
SERVER_LOG="$TMP_DIR/server.log"
STARTED=0

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local status=$?
    if [[ $STARTED -eq 1 ]]; then
        "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP_DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ${#RUN_AS[@]} -gt 0 ]]; then
    chown "$PG_USER:" "$TMP_DIR"
fi
chmod 700 "$TMP_DIR"

SUPERUSER=tenure
PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
DATABASE=tenure_test
PWFILE="$TMP_DIR/pwfile"
(umask 077 && printf '%s\n' "$PASSWORD" >"$PWFILE")
if [[ ${#RUN_AS[@]} -gt 0 ]]; then
    chown "$PG_USER:" "$PWFILE"
fi

"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$DATA_DIR" -U "$SUPERUSER" --pwfile="$PWFILE" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C >"$TMP_DIR/initdb.log" 2>&1 || {
    cat "$TMP_DIR/initdb.log" >&2
    log "initdb failed"
    exit 1
}
rm -f "$PWFILE"

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

PORT=
for _ in 1 2 3 4 5 6 7 8; do
    candidate=$((20000 + RANDOM % 40000))
    if port_taken "$candidate"; then
        continue
    fi
    if "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA_DIR" -l "$SERVER_LOG" -w -t 60 -o \
        "-c listen_addresses=127.0.0.1 -p $candidate -k $TMP_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null; then
        PORT=$candidate
        STARTED=1
        break
    fi
done
if [[ -z "$PORT" ]]; then
    cat "$SERVER_LOG" >&2 2>/dev/null || true
    log "could not start PostgreSQL on a free loopback port"
    exit 1
fi

"${RUN_AS[@]}" env PGPASSWORD="$PASSWORD" "$PG_BIN/createdb" -h 127.0.0.1 -p "$PORT" -U "$SUPERUSER" "$DATABASE"

export TENURE_TEST_POSTGRES_URL="postgres://$SUPERUSER:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (data in $TMP_DIR)"

set +e
"$@"
status=$?
set -e
exit "$status"
