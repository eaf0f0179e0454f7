#!/usr/bin/env bash
# xtask/adoption/adopt.sh HOST: the file steps of adopting `cargo xtask slurm-image` in HOST, a checkout of
# determined-ai/determined (xtask/README.md, "Adopting in a repository"). Run it from this
# repository; it may be run again. Then, in HOST: `cargo xtask slurm-image fmt`, `git add -A`,
# review and commit.
set -euo pipefail
[ $# = 1 ] || { echo "usage: xtask/adoption/adopt.sh HOST (the root of a determined checkout)" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
host=$(cd "$1" && pwd)
packer=tools/slurm/packer
[ -f "$host/$packer/main.pkr.hcl" ] || {
  echo "$host has no $packer/main.pkr.hcl: name the root of a checkout of determined-ai/determined" >&2
  exit 2
}

# 1. The workspace and the xtask; a Cargo.toml of the host's own is not overwritten.
if [ "$here" != "$host" ]; then
  if [ -f "$host/Cargo.toml" ] && ! cmp -s "$here/Cargo.toml" "$host/Cargo.toml"; then
    echo "$host/Cargo.toml is the host's own: add \"xtask\" to its workspace members and copy xtask/ and .cargo/config.toml's alias by hand" >&2
    exit 2
  fi
  cp "$here/Cargo.toml" "$here/Cargo.lock" "$host/"
  rm -rf "$host/xtask" "$host/.cargo"
  cp -R "$here/xtask" "$here/.cargo" "$host/"
  # The template folder's README, which describes the template and points to xtask/README.md;
  # the settings and the checks script only where the team has none yet.
  cp "$here/xtask/adoption/template-README.md" "$host/$packer/README.md"
  for file in slurm-image.toml verify-image.sh; do
    [ -e "$host/$packer/$file" ] || cp "$here/$packer/$file" "$host/$packer/$file"
  done
fi
grep -qxF '/target/' "$host/.gitignore" 2>/dev/null || printf '/target/\n' >>"$host/.gitignore"

# 2. What the xtask replaces (install-ansible.sh stays: the template runs it).
rm -f "$host/$packer/Makefile" "$host/$packer/scripts/generate-pkr-vars.sh" "$host/$packer/scripts/update-variables.sh"

# 3. What called them.
script="$host/tools/slurm/scripts/slurmcluster.sh"
if [ -f "$script" ]; then
  sed -i.adopt 's|make -C tools/slurm/packer build WORKLOAD_MANAGER=|cargo xtask slurm-image build --wm |' "$script"
  rm -f "$script.adopt"
fi

echo "adopted in $host; next, there: cargo xtask slurm-image fmt && git add -A && git commit"
echo "then cargo xtask slurm-image doctor names any line that still calls what was removed"
