#!/usr/bin/env bash
# Runs every test of rtm-compute on this machine: provisions what the tests need (Docker engine
# and daemon, busybox-static) when it is missing, then `cargo test`. Extra arguments go to cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
exec cargo test --locked "$@"
