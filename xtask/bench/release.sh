#!/usr/bin/env bash
# Measures a release's wall time against the slower of the two single builds it replaces
# (the target: at most 1.15 times that), with the tests' stand-in packer sleeping DELAY
# seconds per build. A release with --sequential is timed too, for comparison.
#
#   bash xtask/bench/release.sh [DELAY] [ROUNDS]   (defaults 10 s and 3; figures on stdout)
#
# Everything runs in a temporary git repository made from the tests' `extras` fixture: the
# debug xtask (as `cargo xtask` runs it), no Artifactory (--offline), and gcloud pointed at a
# closed loopback port as in the tests, so the listing after a build fails quickly.
set -euo pipefail
delay=${1:-10}
rounds=${2:-3}
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build -q -p xtask --manifest-path "$repo/Cargo.toml"
xtask="$repo/target/debug/xtask"

host="$work/host"
mkdir -p "$host/bin"
cp -r "$repo/xtask/tests/fixtures/extras/tools" "$host/"
cp "$repo/tools/slurm/packer/slurm-image.toml" "$host/tools/slurm/packer/"
# The one stand-in packer of the tests, taken from where they keep it.
awk '/^pub const STAND_IN_PACKER/ { print "#!/usr/bin/env bash"; inside = 1; next }
     inside && /^"#;$/ { inside = 0 }
     inside' "$repo/xtask/tests/support/mod.rs" > "$host/bin/packer"
grep -q write_manifest "$host/bin/packer" || { echo "could not read the stand-in packer" >&2; exit 1; }
chmod +x "$host/bin/packer"
if ! command -v gcloud >/dev/null 2>&1; then
  printf '#!/bin/sh\necho "stand-in gcloud: no cloud here" >&2\nexit 1\n' > "$host/bin/gcloud"
  chmod +x "$host/bin/gcloud"
fi
printf 'slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n' \
  > "$host/tools/slurm/terraform/images.conf"
mkdir -p "$host/tools/slurm/packer/build"
echo "launcher package bytes" > "$host/tools/slurm/packer/build/hpe-hpc-launcher_3.3.1-2_amd64.deb"
printf '/target/\nbuild/\n/bin/\n/gcloud-config/\n/packer-*\n/last.pkrvars.hcl\n' > "$host/.gitignore"

export PATH="$host/bin:$PATH" FAKE_PACKER_DELAY="$delay"
export CLOUDSDK_CONFIG="$host/gcloud-config" CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true \
  CLOUDSDK_CORE_DISABLE_PROMPTS=1 CLOUDSDK_CORE_PROJECT=determined-ai \
  CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=http://127.0.0.1:9/compute/v1/
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
cd "$host"
git init -q -b main && git add . && git commit -q -m "The host tree"

# Wall time of one xtask run, in seconds; its output goes to the log.
timed() {
  local start end
  start=$(date +%s.%N)
  "$xtask" slurm-image "$@" < /dev/null >> "$work/xtask.log" 2>&1 \
    || { echo "failed: xtask slurm-image $*" >&2; tail -20 "$work/xtask.log" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}

# Back to main with images.conf as committed, for the next run.
reset() {
  git checkout -q -f main
  git branch --format='%(refname:short)' | { grep -v '^main$' || true; } | xargs -r git branch -q -D
}

echo "machine: $(nproc) cores; stand-in packer sleeping ${delay} s per build; ${rounds} rounds"
worst=0
for round in $(seq "$rounds"); do
  reset
  slurm=$(timed build --wm slurm --offline)
  git checkout -q -- tools/slurm/terraform/images.conf
  pbs=$(timed build --wm pbs --offline)
  reset
  release=$(timed release --yes --offline --branch "bench-$round")
  reset
  sequential=$(timed release --yes --offline --sequential --branch "bench-seq-$round")
  ratio=$(awk -v r="$release" -v s="$slurm" -v p="$pbs" 'BEGIN { m = s > p ? s : p; printf "%.3f", r / m }')
  worst=$(awk -v a="$worst" -v b="$ratio" 'BEGIN { print (b > a ? b : a) }')
  echo "round $round: build slurm ${slurm} s, build pbs ${pbs} s, release ${release} s (ratio ${ratio}), release --sequential ${sequential} s"
done
verdict=$(awk -v w="$worst" 'BEGIN { print (w <= 1.15 ? "met" : "missed") }')
echo "worst ratio of release to the slower single build: ${worst} (target <= 1.15: ${verdict})"
