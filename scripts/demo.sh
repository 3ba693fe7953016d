#!/usr/bin/env bash
# The main job on the embedded default: materialize this repository's own compute recipe
# (compute/Dockerfile at HEAD) into the local TriG record, then reproduce it from that record with
# no build cache, and print PASS. Provisions Docker first when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
cargo build --release --locked --quiet
bin=target/release/rtm-compute
record=${RTM_DEMO_RECORD:-output/rtm.trig}

digest=$("$bin" materialize --record "$record" --json | sed -n 's/^ *"digest": "\(sha256:[0-9a-f]\{64\}\)".*/\1/p')
[ -n "$digest" ] || { echo "demo: materialize printed no digest" >&2; exit 2; }
"$bin" reproduce --image-digest "$digest" --from-trig "$record" --no-cache
