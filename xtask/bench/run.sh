#!/usr/bin/env bash
# The one benchmark command: measures, side by side in one run, everything the issues set a
# target for, and writes xtask/BENCHMARKS.md with the machine and the date.
#
#   bash xtask/bench/run.sh [--quick] [--tests]
#
# --quick takes fewer rounds (for trying the script, not for figures). --tests also times three
# `cargo test --workspace` runs in a row and rewrites the section "The test suite"; without it
# that section (measured by hand under load, say) is kept as it is. Run it on an otherwise
# idle machine: the figures are wall times. It needs curl, sha256sum, git and gcloud (the
# Compute API is a loopback stand-in, as in the tests). It takes about 10 minutes (3 with
# --quick), most of it the clean builds of the first-run measurement.
set -euo pipefail
quick=false tests=false
for arg in "$@"; do
  case "$arg" in
    --quick) quick=true ;;
    --tests) tests=true ;;
    *) echo "usage: bash xtask/bench/run.sh [--quick] [--tests]" >&2; exit 2 ;;
  esac
done
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="$repo/xtask/BENCHMARKS.md"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$repo"

if $quick; then first_rounds=1 release_rounds=1 help_runs=10; else first_rounds=3 release_rounds=3 help_runs=30; fi

echo "building the debug xtask and the benchmark tests" >&2
cargo build -q -p xtask
cargo test -q -p xtask --test it --no-run 2>/dev/null

echo "1/6 launcher download against curl + sha256sum" >&2
cargo test -q -p xtask --test it -- --ignored --nocapture --test-threads=1 \
  bench_download:: 2>/dev/null | grep -E '^(launcher download|xtask|curl)' > "$work/download"

bench() { # test name filter, output file
  BENCH_ROUNDS=$release_rounds cargo test -q -p xtask --test it -- --ignored --nocapture \
    --test-threads=1 "bench::$1" 2>/dev/null | grep '^|' > "$work/$2"
}
echo "2/6 gcloud calls per command" >&2
bench gcloud_calls calls
echo "3/6 release against the slower single build" >&2
bench a_release release
echo "  and an unchanged rebuild against a build" >&2
bench unchanged_rebuild reuse
echo "  and the verification step added to a build and a release" >&2
bench verification_cost verification

echo "4/6 start-up of --help" >&2
xtask="$repo/target/debug/xtask"
times=()
for _ in $(seq "$help_runs"); do
  start=$(date +%s%N)
  "$xtask" slurm-image build --help > /dev/null
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000 )))
done
help_median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] / 1000 }')
help_max=$(printf '%s\n' "${times[@]}" | sort -n | tail -1 | awk '{ printf "%.1f", $1 / 1000 }')
help_rss=$( { /usr/bin/time -f '%M' "$xtask" slurm-image build --help > /dev/null; } 2>&1 | tail -1 || echo "?")

echo "5/6 the first cargo xtask against the design card's crates (clean builds)" >&2
bash xtask/bench/first-run.sh "$first_rounds" > "$work/first-run"

# The test suite: measured with --tests, else the section already in the file is kept.
if $tests; then
  echo "tests: cargo test --workspace, three runs in a row" >&2
  cargo test -q --workspace --no-run 2>/dev/null
  {
    echo "## The test suite"
    echo
    echo "\`cargo test --workspace\` three times in a row, already compiled (\`--no-run\` first), written"
    echo "by \`bash xtask/bench/run.sh --tests\`; the load average is at the end of each run."
    echo
    echo '```'
    for n in 1 2 3; do
      start=$(date +%s%N)
      result=passed
      cargo test -q --workspace > /dev/null 2>&1 || result=FAILED
      end=$(date +%s%N)
      echo "run $n: $(( (end - start) / 1000000000 )) s, $result, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    done
    echo '```'
  } > "$work/tests"
else
  awk '/^## / { keep = ($0 == "## The test suite") } keep' "$out" > "$work/tests" 2>/dev/null || true
fi

echo "6/6 writing $out" >&2
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1024 / 1024 }' /proc/meminfo)
load=$(cut -d' ' -f1-3 /proc/loadavg)
{
cat <<EOF
# Benchmarks

Written by \`bash xtask/bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'); rerun it to measure
again (it rewrites this file). Machine: $(nproc) cores ($cpu), $mem, $(uname -sr),
$(rustc --version); load average at the end $load. Every figure is the wall time of the
whole debug-built xtask process, as \`cargo xtask\` runs it. No test asserts a timing.

## Launcher download

\`cargo xtask slurm-image launcher --fetch --yes\` fetching a 256 MiB package from the tests'
loopback Artifactory (storage API listing, streaming sha256 on a second thread, fsync, rename)
against \`curl -s -o f URL && sha256sum f\` from the same server; 5 rounds each after a warm-up.
Targets: at most 0.5 of curl + sha256sum, peak memory under 32 MiB.

\`\`\`
$(cat "$work/download")
\`\`\`

What makes it fast in a debug build: \`[profile.dev.package]\` optimises sha2 and ureq-proto
(ureq-proto walks every body byte for its trace log; unoptimised that was most of the CPU
time). Memory stays flat whatever the size: four 256 KiB buffers travel between the receiving
thread and the hashing and writing thread. The fsync before the rename, which curl does not do,
costs about 0.1 s and is kept: a crash must never leave a launcher with its final name but not
its content.

## gcloud calls per command

Each command against the tests' loopback Compute API, with ten images of each workload
manager, two packer VMs (one older than the default 4 h), a launcher in build/, in a git
checkout; gcloud is the real one behind a wrapper that counts its starts. One gcloud start
costs about a second here, so the calls are most of each command's time.

$(cat "$work/calls")

\`build\` makes three calls: the source family's current image, one list of the project's images
(it finds an image with the same fingerprint and the pinned image's labels, for the "why"), and
the image list after the build. A build that reuses an image makes two: the list that found it
is also the table after the pin, since nothing was built. \`doctor\` runs its network checks side
by side. Artifactory is a closed loopback port here, so doctor's Artifactory check fails at once.

Before and after issue 15's trim (calls per run, then counted through a logging gcloud; a run
of console reads during a verification counts once, as it depends on the VM's pace). The tests
\`build::a_build_and_a_reused_build_make_only_the_gcloud_calls_they_need\` and
\`build::a_verified_build_its_reuse_and_verify_read_each_image_once\` keep them, counting
the calls through the tool's \`Compute\` seam in-process (one seam call is one gcloud start):

| command | before | after | the calls left out |
|---|---|---|---|
| \`build\`, new image, no checks script | 3 | 3 | none: the list after packer is fresh |
| \`build\`, reused | 3 | 2 | the second list: the lookup's list is the table |
| \`build\`, reused, verified already | 4 | 2 | that list, and the image's \`describe\` (its labels are in the list) |
| \`build\`, reused, failed before, verified again | 8 | 6 | both \`describe\`s of the image (its labels are in the list) |
| \`build\`, new image, verified (a release: twice, one list after) | 8 | 8 | none: its own labels and the replaced image's are read after packer |
| \`build --dry-run\` | 2 | 2 | |
| \`verify IMAGE\` | 6 | 5 | the second \`describe\`: the labels read first are those added to |
| \`images\` / \`prune\` / \`doctor\` | 3 / 1 / 3 | 3 / 1 / 3 | none (below) |

Kept on purpose: a new image's build lists again after packer (an hour-old listing would show
another build's images as missing); \`doctor\`'s \`project-info describe\` beside its image list (a
separate permission, a separate check, run side by side); \`images\`' two family lookups (they mark
the image a build would reuse now).

## Release: both builds in the wall time of one

\`release --yes --offline --force\` against the slower of \`build --force\` and
\`build --force --wm pbs\` (\`--force\`: every run builds), with the tests' stand-in packer
sleeping 10 s per build, in a git checkout with the loopback Compute API, on a template in the
real one's form (no optional declarations: each build runs in its own copy of the template and
its image is labelled with gcloud afterwards) and on this repository's; target: at most 1.15
times the slower single build (the issue's bound on the real form: 1.3). \`release --sequential\` for comparison. A release prepares both
builds side by side (playbook check, source image), runs both packers at once, then commits
and lists the images once for the prune plan; with real builds of about an hour the ratio
tends to 1.

$(cat "$work/release")

## An unchanged rebuild against a build

\`build --offline\` after a change to a static file (a real build; the stand-in packer sleeps 5 s)
against the same command again with nothing changed, which finds the image made from the same
inputs and pins it without running packer. With a real build of about an hour the ratio is
near 0: what remains is the three gcloud calls.

$(cat "$work/reuse")

## The verification step

\`build --offline --force\` and \`release --yes --offline --force\` with the verification (a VM
booted in the loopback Compute API, the repository's \`verify-image.sh\` run in a sandbox that
plays the image, the console read, the VM deleted, the image labelled) against the same with
\`--no-verify\`. With the stand-ins the step costs its gcloud calls (create, console reads,
delete, describe and label the image: about a second each here); on GCE add the VM's boot,
a few minutes. A release's two verifications run side by side, so it adds about what one
build's does.

$(cat "$work/verification")

## Start-up

\`cargo xtask slurm-image build --help\` (the built binary, without cargo), $help_runs runs:
median ${help_median} ms, slowest ${help_max} ms, peak RSS ${help_rss} KiB.

## The first \`cargo xtask\`

A clean debug build with -j2, crates already downloaded, of the design card's crates at their
default features (\`xshell\`, \`clap\` with \`derive\`, \`anyhow\`, \`serde\` with \`derive\`, \`toml\`,
\`ureq\`, \`sha2\` in an empty binary) and of the xtask from its \`Cargo.lock\`, which is what a
user's first \`cargo xtask\` compiles; target: at most 1.0 of the card. The workspace's dev
profile keeps line tables only as debug info (\`debug = "line-tables-only"\` in \`Cargo.toml\`);
the last two figures of each round build the xtask with cargo's default full debug info and
with none, to weigh that choice.

\`\`\`
$(cat "$work/first-run")
\`\`\`

Line tables keep file and line in a backtrace; a debugger loses local variables, which a
developer can get back with \`CARGO_PROFILE_DEV_DEBUG=true\`. Dropping them too saves little
more. The card compiles an empty \`main\`; the xtask's own crate (about 11,000 lines) is compiled
last, alone on the critical path, for 3 to 5 s of the difference. The rest is TLS and HTTP
(native-tls over the system OpenSSL, where a company CA lives, and ureq, whose ureq-proto is
optimised for the download's sake) and the derive macros of clap and serde: features are
trimmed on every crate, and serde and clap are pinned so that one \`syn\` serves every
proc-macro crate. Turning incremental compilation off saves about one more second, at the cost
of every later rebuild of a developer editing the xtask; it is not taken.
EOF
if [ -s "$work/tests" ]; then echo; cat "$work/tests"; fi
} > "$out"
echo "wrote $out" >&2
