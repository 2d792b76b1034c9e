#!/usr/bin/env bash
# Bring up the local services Sportello needs — PostgreSQL and NATS with
# JetStream — when they are not already running, installing them from the
# distribution's packages if missing (Debian/Ubuntu). Idempotent: on a
# machine where both already answer, it only checks.
#
#   PGHOST/PGPORT (default 127.0.0.1:5432), NATS port 4222.
set -euo pipefail

PGPORT="${PGPORT:-5432}"
NATS_PORT="${NATS_PORT:-4222}"
STATE_DIR="${SPORTELLO_STATE_DIR:-$HOME/.sportello}"
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

say() { printf '[services] %s\n' "$*"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# --- PostgreSQL ---------------------------------------------------------
if port_open "$PGPORT"; then
  say "PostgreSQL answers on 127.0.0.1:$PGPORT"
else
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    say "installing PostgreSQL from the distribution's packages"
    apt_install postgresql postgresql-client
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    ver="$(ls /etc/postgresql | sort -V | tail -1)"
    say "starting PostgreSQL $ver"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  fi
  for _ in $(seq 1 60); do port_open "$PGPORT" && break; sleep 0.5; done
  port_open "$PGPORT" || { say "PostgreSQL did not come up on $PGPORT"; exit 1; }
  # Development only: the user postgres gets the password "postgres", which
  # the default DATABASE_URL uses (ignored where auth is trust).
  $SUDO -u postgres psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null 2>&1 || true
fi

# --- NATS with JetStream -------------------------------------------------
if port_open "$NATS_PORT"; then
  say "NATS answers on 127.0.0.1:$NATS_PORT"
else
  if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    say "installing nats-server from the distribution's packages"
    apt_install nats-server
  fi
  bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  mkdir -p "$STATE_DIR/nats"
  say "starting nats-server with JetStream (store: $STATE_DIR/nats)"
  nohup "$bin" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$STATE_DIR/nats" \
    >"$STATE_DIR/nats-server.log" 2>&1 &
  for _ in $(seq 1 40); do port_open "$NATS_PORT" && break; sleep 0.25; done
  port_open "$NATS_PORT" || { say "NATS did not come up on $NATS_PORT"; exit 1; }
fi
