#!/usr/bin/env bash
# Measures what a user's first `cargo xtask` costs on this machine, against the design card's
# crates at their default features (the budget: at most 1.0 of the latter), and the same first
# build with cargo's default full debug info and with none, to weigh the workspace's
# `debug = "line-tables-only"`.
#
#   bash xtask/bench/first-run.sh [ROUNDS]   (default 3; run on an otherwise idle machine)
#
# All are clean debug builds with -j2 (the 2-core budget), with crates already downloaded, so
# only compiling is timed. The xtask figures include compiling the xtask itself. One line per
# round on stdout: `round N: card A s, xtask B s (ratio R), full debug info C s, no debug info D s`.
set -euo pipefail
rounds=${1:-3}
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/xtask-copy"
cp -r "$repo/Cargo.toml" "$repo/Cargo.lock" "$repo/xtask" "$work/xtask-copy/"
rm -rf "$work/xtask-copy/xtask/target"

mkdir -p "$work/card/src"
cat > "$work/card/Cargo.toml" <<'TOML'
[package]
name = "card"
version = "0.1.0"
edition = "2021"
[dependencies]
xshell = "0.2"
clap = { version = "4", features = ["derive"] }
anyhow = "1"
serde = { version = "1", features = ["derive"] }
toml = "0.9"
ureq = "3"
sha2 = "0.10"
TOML
echo 'fn main() {}' > "$work/card/src/main.rs"

time_build() { # dir, extra cargo args...
  local dir=$1; shift
  (cd "$dir" && cargo fetch -q && rm -rf target)
  local start end
  start=$(date +%s.%N)
  (cd "$dir" && cargo build -q -j2 "$@")
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}

echo "machine: $(nproc) cores, $(rustc --version)"
for i in $(seq "$rounds"); do
  card=$(time_build "$work/card")
  xtask=$(time_build "$work/xtask-copy" --locked -p xtask)
  full=$(time_build "$work/xtask-copy" --locked -p xtask --config 'profile.dev.debug=true')
  none=$(time_build "$work/xtask-copy" --locked -p xtask --config 'profile.dev.debug=false')
  echo "round $i: card $card s, xtask $xtask s (ratio $(awk -v x="$xtask" -v c="$card" 'BEGIN { printf "%.2f", x / c }')), full debug info $full s, no debug info $none s"
done
crates=$(cd "$work/xtask-copy" && cargo tree -q -p xtask -e normal,build --prefix none | sed 's/ (\*)//' | sort -u | wc -l)
card_crates=$(cd "$work/card" && cargo tree -q -e normal,build --prefix none | sed 's/ (\*)//' | sort -u | wc -l)
echo "crates compiled: xtask $crates, card at defaults $card_crates"
