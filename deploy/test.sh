#!/usr/bin/env bash
# Quick start, command 2: services up, then the whole test suite. Each test
# makes its own database and JetStream stream; tests that stop NATS start a
# private nats-server of their own.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/services-up.sh
export DATABASE_URL="${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
exec cargo test --workspace --all-targets "$@"
