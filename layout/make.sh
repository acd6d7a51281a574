#!/usr/bin/env bash
# Writes layout/queuewatch.order: the functions a release build of
# queuewatch runs, which build.rs hands to the linker so that they sit
# together in the binary. Start-up then touches a few hundred KiB of code
# instead of pages spread over all 9 MiB of it, and the code kept resident
# falls from about 6 MiB to about 2 MiB (BENCHMARKS.md, "Code layout").
#
# Needs valgrind (callgrind lists every function that ran). Run it from the
# repository after changes that move much code, on x86_64 Linux:
#   layout/make.sh
# The names are exact, and code changes rename some functions (fat LTO
# numbers its local copies, `name.1234`): a small change to settings parsing
# renamed 676 of 1,185. So write the list anew before a release or a
# measurement; CI prints how much of it a build matches. A stale list does
# no harm beyond memory: names that are gone are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin queuewatch
BIN=$PWD/target/release/queuewatch
WORK=$(mktemp -d)
trap 'kill $SIM 2>/dev/null || true; rm -rf "$WORK"' EXIT

# The workload: 1,000 queues every 5 s against a simulator in its own
# process, with the jsonl audit (what an operator runs, minus the network).
PORT=${PORT:-18189}
python3 - "$WORK" <<'PY'
import sys, uuid, random
d = sys.argv[1]
rng = random.Random(1)
ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(1000)]
lines = "".join(f"  - id: {i}\n" for i in ids)
open(f"{d}/sim.yaml", "w").write("queues:\n" + lines)
open(f"{d}/qw.yaml", "w").write(
    "genesys: {environment: mypurecloud.com, api_url: 'http://127.0.0.1:PORT', "
    "login_url: 'http://127.0.0.1:PORT', rate_limit_per_minute: 10000000}\n"
    "poll: {interval: 5s}\n"
    f"callbacks: [{{kind: jsonl, path: '{d}/audit.jsonl'}}]\n"
    "http: {bind: null}\nqueues:\n" + lines)
PY
sed -i "s/PORT/$PORT/g" "$WORK/qw.yaml"
"$BIN" simulate --bind 127.0.0.1:$PORT --config "$WORK/sim.yaml" --rate-limit 0 >/dev/null 2>&1 &
SIM=$!
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  sleep 0.1
done
GENESYS_CLIENT_ID=simulated-client GENESYS_CLIENT_SECRET=simulated-secret RUST_LOG=warn \
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$WORK/cg.out" \
  "$BIN" run --config "$WORK/qw.yaml" --for 12s >/dev/null 2>"$WORK/valgrind.log" \
  || { tail -20 "$WORK/valgrind.log"; exit 1; }

# Every function named in the profile that is a function of the binary.
grep -hoE '^c?fn=\([0-9]+\) .*' "$WORK"/cg.out* | sed -E 's/^c?fn=\([0-9]+\) //' | sort -u >"$WORK/ran"
nm --defined-only "$BIN" | awk '$2 ~ /^[tT]$/ {print $3}' | sort -u >"$WORK/defined"
{
  echo "# Functions a release build runs (layout/make.sh, $(date -u +%F)); build.rs"
  echo "# passes this file to the linker. One symbol a line."
  comm -12 "$WORK/ran" "$WORK/defined"
} >layout/queuewatch.order
echo "layout/queuewatch.order: $(grep -vc '^#' layout/queuewatch.order) functions"
