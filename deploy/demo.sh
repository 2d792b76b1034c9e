#!/usr/bin/env bash
# Quick start, command 1: services up, build, migrate, load the demo
# network, write demo credentials, serve at http://127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/services-up.sh
export DATABASE_URL="${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/sportello}"
cargo build --release -p sportello
mkdir -p .sportello
./target/release/sportello migrate  # creates the database if missing
./target/release/sportello demo --write-credentials .sportello/demo-credentials.json
echo "Serving at http://${SPORTELLO_LISTEN:-127.0.0.1:8080} (demo tokens in .sportello/demo-credentials.json)"
exec ./target/release/sportello serve
