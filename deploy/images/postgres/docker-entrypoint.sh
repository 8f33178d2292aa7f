#!/bin/bash
# docker-entrypoint.sh: the entrypoint of payment-outbox/postgres, a Postgres
# image built from Debian's packages (deploy/images/build-postgres-image) for
# machines that cannot pull postgres:15 from a registry.
#
# It behaves like the official image's entrypoint for what this project and
# testcontainers use: on the first start (no $PGDATA/PG_VERSION) it runs initdb
# with POSTGRES_USER (default postgres) and POSTGRES_PASSWORD (required unless
# POSTGRES_HOST_AUTH_METHOD=trust), creates POSTGRES_DB (default: the user's
# name), runs /docker-entrypoint-initdb.d/*.sql and *.sh, then starts the
# server listening on every address. Local socket connections are trusted;
# TCP connections authenticate with POSTGRES_HOST_AUTH_METHOD (default
# scram-sha-256).
#
# Unlike the official image it never runs as root: the image's USER is the
# postgres OS user, so there is no privilege drop and no chown of PGDATA. A
# volume mounted on PGDATA must be writable by that user (named volumes are:
# they take the ownership of the image's directory).
set -Eeuo pipefail

log() { printf 'docker-entrypoint: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# `docker run IMAGE -c fsync=off` passes server flags, as with the official image.
if [[ $# -eq 0 || "${1:0:1}" == "-" ]]; then
	set -- postgres "$@"
fi
if [[ "$1" != "postgres" ]]; then
	exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
export PGDATA

if [[ "$(id -u)" == "0" ]]; then
	die "refusing to run as root: run the image as its postgres user (the image's default USER)"
fi

init_cluster() {
	if [[ -z "${POSTGRES_PASSWORD:-}" && "$POSTGRES_HOST_AUTH_METHOD" != "trust" ]]; then
		die "the database is uninitialized and POSTGRES_PASSWORD is not set: set it (or POSTGRES_HOST_AUTH_METHOD=trust, for throwaway servers only)"
	fi
	mkdir -p "$PGDATA"
	chmod 0700 "$PGDATA" 2>/dev/null || true

	log "initializing a cluster in $PGDATA for user $POSTGRES_USER"
	local pwfile=()
	if [[ -n "${POSTGRES_PASSWORD:-}" ]]; then
		# A file, not an argument: the password stays out of the process list.
		printf '%s\n' "$POSTGRES_PASSWORD" >"/tmp/pwfile.$$"
		pwfile=(--pwfile="/tmp/pwfile.$$")
	fi
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is word-split on purpose, as upstream does.
	initdb --username="$POSTGRES_USER" "${pwfile[@]}" --encoding=UTF8 --locale=C.UTF-8 \
		--auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" ${POSTGRES_INITDB_ARGS:-} >&2
	rm -f "/tmp/pwfile.$$"

	# initdb only writes loopback lines for host connections; a container is
	# reached over its network, so every address authenticates the same way.
	printf '\n# docker-entrypoint: any address, authenticated\nhost all all all %s\n' \
		"$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
	printf "\n# docker-entrypoint\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

	# A temporary server on the socket only, so nothing connects from outside
	# before the database and the init scripts are in place. Its log goes to
	# stdout like the real server's: "ready to accept connections" appears
	# twice on a first start, as with the official image, which is what
	# testcontainers' postgres module waits for.
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start

	local psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --no-password --dbname postgres)
	if [[ "$POSTGRES_DB" != "postgres" ]]; then
		"${psql[@]}" --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >&2
	fi
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		[[ -e "$f" ]] || continue
		case "$f" in
		*.sh) log "running $f"; # shellcheck disable=SC1090
			. "$f" ;;
		*.sql) log "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" >&2 ;;
		*) log "ignoring $f" ;;
		esac
	done

	pg_ctl -D "$PGDATA" -m fast -w stop
	log "initialization done; starting the server"
}

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
	init_cluster
fi
exec "$@"
