#!/usr/bin/env bash
# The test suite's target (issue 22): `cargo test --workspace` in at most 3 minutes on a 2-core
# machine with two busy loops beside it, compiled, starting the real gcloud at most 150 times.
#
#   bash xtask/bench/suite.sh [RUNS]
#
# Clones HEAD beside this checkout (so that ../shared is beside the clone too, as in CI),
# compiles the tests once, then times RUNS (default 3) runs in a row while two `yes` loops keep
# both cores busy. Every gcloud start is counted by a wrapper first on PATH, which passes each
# call on to the real gcloud; the tests name themselves to it (XTASK_TEST), so the heaviest
# can be listed. Prints one line per run and the tests that start gcloud most.
set -euo pipefail
runs="${1:-3}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
real_gcloud="$(command -v gcloud)" || { echo "gcloud is missing" >&2; exit 1; }
clone="$(dirname "$repo")/.suite-bench-$$"
work="$(mktemp -d)"
loops=()
cleanup() {
  for pid in "${loops[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$clone" "$work"
}
trap cleanup EXIT

git clone -q "$repo" "$clone"
mkdir -p "$work/bin"
cat > "$work/bin/gcloud" <<EOF
#!/bin/sh
echo "\${XTASK_TEST:-contract} \$1 \$2 \$3" >> "$work/starts"
exec "$real_gcloud" "\$@"
EOF
chmod +x "$work/bin/gcloud"

cd "$clone"
echo "compiling the tests (not timed)" >&2
CI=true cargo test --workspace --locked --no-run -q 2>/dev/null

yes > /dev/null & loops+=($!)
yes > /dev/null & loops+=($!)
echo "$(git rev-parse --short HEAD), $(nproc) cores, two busy loops beside the suite, CI=true:"
for run in $(seq "$runs"); do
  : > "$work/starts"
  start=$(date +%s.%N)
  status=0
  PATH="$work/bin:$PATH" CI=true cargo test --workspace --locked > "$work/out" 2>&1 || status=$?
  end=$(date +%s.%N)
  # The unit tests' and the integration tests' lines (the doc tests' are empty).
  results=$(grep '^test result' "$work/out" | grep -v ' 0 passed; 0 failed' \
    | sed -E 's/test result: ([a-zA-Z]+)\. ([0-9]+) passed; ([0-9]+) failed.*/\2 passed, \3 failed/' | paste -sd';' -)
  printf '  run %d: %.0f s, %d gcloud starts, exit %d (%s), load %s\n' "$run" \
    "$(echo "$end - $start" | bc)" "$(wc -l < "$work/starts")" "$status" "$results" \
    "$(cut -d' ' -f1 /proc/loadavg)"
  # A failed run names its failures and keeps its output beside the checkout.
  if [ "$status" != 0 ]; then
    grep -E '^test .* FAILED$' "$work/out" | sed 's/^/    /' || true
    cp "$work/out" "$repo/target/suite-bench-run-$run.txt" 2>/dev/null \
      && echo "    its output: target/suite-bench-run-$run.txt"
  fi
done
echo "the tests that start gcloud most (last run):"
cut -d' ' -f1 "$work/starts" | sort | uniq -c | sort -rn | head -8
