#!/usr/bin/env bash
# Benchmarks of rtm-compute, each printed as a ratio against a baseline measured in the same run:
#   1. `rtm-compute hash` over a 200 MB build context of 4000 files, against the best shell
#      pipeline (`find | xargs -0 -P<cores> openssl dgst -sha256`) and coreutils `sha256sum`;
#   2. `reproduce` of a cached build, against the bare `git worktree add && docker build &&
#      docker inspect` pipeline (for a normalised witness and for a raw one);
#   3. normalisation of a 300 MB image, against `docker save | cat > /dev/null` (the daemon's floor);
#   4. pull-and-verify against rebuild-and-verify of the same 100 MB witness, both cold (the image
#      removed from the daemon, no build cache), with a local docker-registry;
#   5. `rtm-compute list` of a record of 10 000 witnesses, against Python rdflib loading the same
#      file (when Python with rdflib is available).
# Every figure is the best of RUNS runs (default 3) on a warm page cache.
# Environment: RUNS, CONTEXT_MB (default 200), IMAGE_MB (default 300), PULL_MB (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
cargo build --release --locked --quiet
bin=$PWD/target/release/rtm-compute
runs=${RUNS:-3}
context_mb=${CONTEXT_MB:-200}
image_mb=${IMAGE_MB:-300}
pull_mb=${PULL_MB:-100}
cores=$(nproc)
work=$(mktemp -d "${TMPDIR:-/tmp}/rtm-bench.XXXXXX")
images=()
registry_pid=""
cleanup() {
    [ -z "$registry_pid" ] || kill "$registry_pid" 2>/dev/null || true
    [ ${#images[@]} -eq 0 ] || docker image rm --force "${images[@]}" >/dev/null 2>&1 || true
    git -C "$work/repo" worktree prune 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# best_of CMD…: runs CMD $runs times (output discarded) and prints the fastest wall time in seconds.
# When $BEFORE is set, it runs (untimed) before each run.
best_of() {
    local best="" start end t
    for _ in $(seq "$runs"); do
        if [ -n "${BEFORE:-}" ]; then sh -c "$BEFORE" >/dev/null 2>&1 || true; fi
        start=$(date +%s%N)
        "$@" >/dev/null 2>&1
        end=$(date +%s%N)
        t=$((end - start))
        if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    done
    awk -v ns="$best" 'BEGIN { printf "%.3f", ns / 1e9 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rate() { awk -v mb="$1" -v s="$2" 'BEGIN { printf "%.0f", mb / s }'; }
row() { printf '  %-58s %9s s %9s %s\n' "$1" "$2" "$3" "$4"; }

echo "machine: $cores cores, $(uname -m); $(docker version --format 'docker {{.Server.Version}}'); $runs runs each, best shown"

# 1. Hashing a build context.
ctx=$work/ctx
mkdir -p "$ctx"
files=4000
per_file=$((context_mb * 1024 * 1024 / files))
head -c "$((context_mb * 1024 * 1024))" /dev/urandom >"$work/blob"
(cd "$ctx" && split -a 4 -d -b "$per_file" "$work/blob" part- && for i in $(seq 0 9); do mkdir -p "d$i"; mv part-*"$i" "d$i/" 2>/dev/null || true; done)
rm "$work/blob"
printf 'FROM scratch\nCOPY . /ctx/\n' >"$ctx/Dockerfile"
cat -- "$ctx"/*/* >/dev/null # warm the page cache
n=$(find "$ctx" -type f | wc -l)
echo
echo "1. build-context hash: $n files, $context_mb MB"
t_rtm=$(best_of "$bin" hash --dockerfile "$ctx/Dockerfile" --context "$ctx")
t_openssl=$(best_of sh -c "find '$ctx' -type f -print0 | xargs -0 -n 64 -P $cores openssl dgst -sha256")
t_coreutils=$(best_of sh -c "find '$ctx' -type f -print0 | xargs -0 sha256sum")
row "rtm-compute hash" "$t_rtm" "$(rate "$context_mb" "$t_rtm") MB/s" "1.00"
row "find | xargs -P$cores openssl dgst -sha256" "$t_openssl" "$(rate "$context_mb" "$t_openssl") MB/s" "$(ratio "$t_openssl" "$t_rtm") x rtm time"
row "find | xargs sha256sum (coreutils)" "$t_coreutils" "$(rate "$context_mb" "$t_coreutils") MB/s" "$(ratio "$t_coreutils" "$t_rtm") x rtm time"

# 2. Reproduce overhead on a cached build.
repo=$work/repo
mkdir -p "$repo/compute" "$repo/app"
git -C "$repo" init --quiet
head -c 1048576 /dev/urandom >"$repo/app/payload"
printf 'FROM scratch\nCOPY app/ /app/\n' >"$repo/compute/Dockerfile"
git -C "$repo" add --all
git -C "$repo" -c user.name=bench -c user.email=bench@example.org commit --quiet -m bench
sha=$(git -C "$repo" rev-parse HEAD)
norm=$("$bin" -q materialize --repo "$repo" --record "$work/norm.trig" --tag rtm-bench/repro:norm --json | sed -n 's/^ *"digest": "\(sha256:[0-9a-f]*\)".*/\1/p')
raw=$("$bin" -q materialize --repo "$repo" --record "$work/raw.trig" --tag rtm-bench/repro:raw --no-normalize --json | sed -n 's/^ *"digest": "\(sha256:[0-9a-f]*\)".*/\1/p')
images+=(rtm-bench/repro:norm rtm-bench/repro:raw)
bare() {
    local wt=$work/wt
    git -C "$repo" worktree add --quiet --detach "$wt" "$sha"
    docker build -q -f "$wt/compute/Dockerfile" "$wt" >/dev/null
    docker inspect --format '{{.Id}}' rtm-bench/repro:raw >/dev/null
    git -C "$repo" worktree remove --force "$wt"
}
echo
echo "2. reproduce of a cached build (1 MB context)"
t_bare=$(best_of bare)
t_raw=$(best_of "$bin" -q reproduce --image-digest "$raw" --from-trig "$work/raw.trig" --record "$work/audit.trig" --repo "$repo")
t_norm=$(best_of "$bin" -q reproduce --image-digest "$norm" --from-trig "$work/norm.trig" --record "$work/audit.trig" --repo "$repo")
row "git worktree add && docker build && docker inspect" "$t_bare" "" "1.00"
row "rtm-compute reproduce (raw witness)" "$t_raw" "" "$(ratio "$t_raw" "$t_bare") x bare"
row "rtm-compute reproduce (normalised witness)" "$t_norm" "" "$(ratio "$t_norm" "$t_bare") x bare"

# 3. Normalisation of a large image.
big=$work/big
mkdir -p "$big/data"
head -c "$((image_mb * 1024 * 1024))" /dev/urandom >"$work/blob"
(cd "$big/data" && split -a 3 -d -b $((8 * 1024 * 1024)) "$work/blob" chunk-)
rm "$work/blob"
printf 'FROM scratch\nCOPY data/ /data/\n' >"$big/Dockerfile"
docker build -q -t rtm-bench/big:raw "$big" >/dev/null
images+=(rtm-bench/big:raw rtm-bench/big:norm)
rm -rf "$big"
echo
echo "3. normalisation of a $image_mb MB image"
t_save=$(best_of sh -c "docker save rtm-bench/big:raw | cat > /dev/null")
# Each run starts without the normalised image, so every run writes and loads it.
t_normalize=$(BEFORE="docker image rm --force rtm-bench/big:norm" best_of "$bin" -q normalize rtm-bench/big:raw --source-date-epoch 1735787045 --tag rtm-bench/big:norm)
row "docker save | cat > /dev/null" "$t_save" "$(rate "$image_mb" "$t_save") MB/s" "1.00"
row "rtm-compute normalize (save, rewrite, load)" "$t_normalize" "$(rate "$image_mb" "$t_normalize") MB/s" "$(ratio "$t_normalize" "$t_save") x save"
row "  of which added beyond the save" "$(awk -v a="$t_normalize" -v b="$t_save" 'BEGIN { printf "%.3f", a - b }')" "" "$(ratio "$(awk -v a="$t_normalize" -v b="$t_save" 'BEGIN { print a - b }')" "$t_save") x save"

# 4. Pull-and-verify against rebuild-and-verify, both cold.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 5099)
mkdir -p "$work/registry"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$work/registry/data" "$port" >"$work/registry/config.yml"
docker-registry serve "$work/registry/config.yml" >/dev/null 2>&1 &
registry_pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
pull=$work/pullrepo
mkdir -p "$pull/compute" "$pull/data"
head -c "$((pull_mb * 1024 * 1024))" /dev/urandom >"$work/blob"
(cd "$pull/data" && split -a 3 -d -b $((8 * 1024 * 1024)) "$work/blob" chunk-)
rm "$work/blob"
printf 'FROM scratch\nCOPY data/ /data/\n' >"$pull/compute/Dockerfile"
git -C "$pull" init --quiet
git -C "$pull" add --all
git -C "$pull" -c user.name=bench -c user.email=bench@example.org commit --quiet -m bench
pulled=$("$bin" -q materialize --repo "$pull" --record "$work/pull.trig" --tag rtm-bench/pull:1 --registry "127.0.0.1:$port" --registry-image rtm-bench/pull --json)
witness=$(printf '%s\n' "$pulled" | sed -n 's/^ *"digest": "\(sha256:[0-9a-f]*\)".*/\1/p')
built=$(printf '%s\n' "$pulled" | sed -n 's/^ *"builtDigest": "\(sha256:[0-9a-f]*\)".*/\1/p')
images+=(rtm-bench/pull:1 "$witness" "$built")
forget="docker image rm --force $witness $built"
echo
echo "4. verify a $pull_mb MB witness, cold (image removed, no build cache)"
t_rebuild=$(BEFORE="$forget" best_of "$bin" -q reproduce --image-digest "$witness" --from-trig "$work/pull.trig" --record "$work/audit.trig" --repo "$pull" --no-cache)
t_pull=$(BEFORE="$forget" best_of "$bin" -q reproduce --image-digest "$witness" --from-trig "$work/pull.trig" --record "$work/audit.trig" --pull)
row "reproduce: rebuild and verify (--no-cache)" "$t_rebuild" "" "1.00"
row "reproduce: pull by digest and verify (--pull)" "$t_pull" "" "$(ratio "$t_pull" "$t_rebuild") x rebuild"

# 5. Listing 10 000 witnesses.
big_record=$work/big.trig
{
    printf '@prefix rtm: <http://example.org/ontology/rtm#> .\n@prefix prov: <http://www.w3.org/ns/prov#> .\n@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n<http://example.org/adcs-demo/graph/evidence> {\n'
    awk 'BEGIN { for (i = 0; i < 10000; i++) { h = sprintf("%064x", i); printf "<urn:adcs:docker-image:sha256-%s> a rtm:DockerImage, prov:Entity ; rtm:contentHash \"sha256:%s\" ; rtm:imageLabel \"demo:%d\" ; prov:generatedAtTime \"2025-01-02T03:04:05Z\"^^xsd:dateTime ; rtm:gitRef \"git+https://example.org/r@%040x#compute/Dockerfile\"^^xsd:anyURI .\n", h, h, i, i } }'
    printf '}\n'
} >"$big_record"
echo
echo "5. list a record of 10 000 witnesses ($(wc -c <"$big_record") bytes)"
t_list=$(best_of "$bin" list --from-trig "$big_record" --json)
row "rtm-compute list --json" "$t_list" "" "1.00"
if python3 -c 'import rdflib' 2>/dev/null; then
    t_rdflib=$(best_of python3 -c "import rdflib, sys; rdflib.Dataset().parse(sys.argv[1], format='trig')" "$big_record")
    row "python3 rdflib: Dataset().parse (load only)" "$t_rdflib" "" "$(ratio "$t_rdflib" "$t_list") x rtm time"
else
    echo "  (python3 with rdflib is not installed: pip install rdflib to compare)"
fi
