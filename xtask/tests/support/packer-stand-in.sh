#!/usr/bin/env bash
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
echo "$(pwd) | $*" >> "$root/packer-calls.log"
case "${1:-}" in
  version)
    case "${FAKE_PACKER:-}" in
      1.6.6|1.7.4) echo "Packer v$FAKE_PACKER" ;;
      *) echo "Packer v1.8.6" ;;
    esac
    exit 0 ;;
  init) touch "$root/plugins-installed"; exit "${FAKE_PACKER_EXIT:-0}" ;;
  plugins)
    if [ "${FAKE_PACKER_PLUGINS:-}" != none ] || [ -e "$root/plugins-installed" ]; then
      for p in googlecompute ansible; do
        echo "$HOME/.config/packer/plugins/github.com/hashicorp/$p/packer-plugin-${p}_v1.1.4_x5.0_linux_amd64"
      done
    fi
    exit 0 ;;
  fmt) exit "${FAKE_PACKER_EXIT:-0}" ;;
  validate)
    for arg in "$@"; do case "$arg" in -var-file=*) cp "${arg#-var-file=}" "$root/validated-$(sed -n 's/^workload_manager = "\(.*\)"$/\1/p' "${arg#-var-file=}").pkrvars.hcl" ;; esac; done
    if [ "${FAKE_PACKER:-}" = undefined ]; then
      printf 'Warning: Undefined variable\n\nA "zone" variable was set but was not found in known variables.\n'
    fi
    echo "The configuration is valid."
    exit "${FAKE_PACKER_EXIT:-0}" ;;
  build) ;;
  *) echo "stand-in packer: unexpected $*" >&2; exit 64 ;;
esac
var_file=""
for arg in "$@"; do case "$arg" in -var-file=*) var_file="${arg#-var-file=}" ;; esac; done
cp "$var_file" "$root/last.pkrvars.hcl"
echo "PACKER_LOG=${PACKER_LOG:-} PACKER_LOG_PATH=${PACKER_LOG_PATH:-}" >> "$root/packer-env.log"
deb=$(sed -n 's/^launcher_deb_name = "\(.*\)"$/\1/p' "$var_file")
echo "$deb $(sha256sum "build/$deb" | cut -c1-64)" >> "$root/packer-launchers.log"
echo "$(ls -A build | tr '\n' ' ')" >> "$root/packer-uploads.log"
manifest=$(sed -n 's/^manifest_path = "\(.*\)"$/\1/p' "$var_file")
manifest="${manifest:-build/manifest.json}"
wm=$(sed -n 's/^workload_manager = "\(.*\)"$/\1/p' "$var_file")
wm_mode="FAKE_PACKER_$(echo "$wm" | tr '[:lower:]' '[:upper:]')"
mode="${!wm_mode:-${FAKE_PACKER:-}}"
echo "$wm start $(date +%s.%N)" >> "$root/packer-times.log"
trap 'echo "$wm end $(date +%s.%N)" >> "$root/packer-times.log"' EXIT
[ -n "${PACKER_LOG_PATH:-}" ] && echo "stand-in packer log of the $wm build ($mode)" >> "$PACKER_LOG_PATH"
# Writes the manifest, and "creates" the image in the loopback Compute API as the template
# would: its labels are the variables file's `image_labels`.
write_manifest() {
  builds=$(cat "$root/packer-builds-$wm" 2>/dev/null || echo 0)
  echo $((builds + 1)) > "$root/packer-builds-$wm"
  created=$((1800000000 + builds))
  image="det-environments-$wm-ci-$created"
  cat > "$manifest" <<JSON
{
  "builds": [
    {"name": "fixture", "builder_type": "googlecompute", "build_time": 1700000000, "files": null,
     "artifact_id": "det-environments-$wm-ci-1700000000", "packer_run_uuid": "old-run", "custom_data": null},
    {"name": "fixture", "builder_type": "googlecompute", "build_time": $created, "files": null,
     "artifact_id": "$image", "packer_run_uuid": "new-run", "custom_data": null}
  ],
  "last_run_uuid": "new-run"
}
JSON
  labels=$(sed -n '/^image_labels = {$/,/^}$/ s/^  \("[^"]*"\) = \("[^"]*"\)$/\1: \2/p' "$var_file" | paste -sd, -)
  mkdir -p "$root/compute-images"
  cat > "$root/compute-images/.$image.tmp" <<JSON
{"name": "$image", "family": "det-environments-slurm-ci", "status": "READY",
 "creationTimestamp": "$(date -u -d "@$created" +%Y-%m-%dT%H:%M:%S.000+00:00)",
 "description": "HPC $wm testing VM $deb", "labels": {$labels}}
JSON
  mv "$root/compute-images/.$image.tmp" "$root/compute-images/$image.json"
}
echo "==> googlecompute.fixture: building a $wm image (stand-in)"
# As the googlecompute plugin does once it has resolved the source: the image given, else the
# family's current one (FAKE_PACKER_USING_IMAGE stands in for a family that moved meanwhile).
using=$(sed -n 's/^source_image = "\(.*\)"$/\1/p' "$var_file")
if [ -z "$using" ]; then
  case "$(sed -n 's/^image_family = "\(.*\)"$/\1/p' "$var_file")" in
    slurm-gcp-6-3-ubuntu-2004-lts) using=slurm-gcp-6-3-ubuntu-2004-lts-v20240101 ;;
    ubuntu-2004-lts) using=ubuntu-2004-focal-v20240101 ;;
  esac
  using="${FAKE_PACKER_USING_IMAGE:-$using}"
fi
echo "==> googlecompute.fixture: Using image: $using"
[ -n "${PACKER_LOG_PATH:-}" ] && echo "2026/01/01 00:00:00 ui: ==> googlecompute.fixture: Using image: $using" >> "$PACKER_LOG_PATH"
# Deleting the VM after an interrupt: until the test creates $FAKE_PACKER_CLEANUP_UNTIL (at most
# about three minutes), else for FAKE_PACKER_CLEANUP_S seconds.
clean_up() {
  if [ -n "${FAKE_PACKER_CLEANUP_UNTIL:-}" ]; then
    for _ in $(seq 3600); do [ -e "$FAKE_PACKER_CLEANUP_UNTIL" ] && return; sleep 0.05; done
  else
    sleep "${FAKE_PACKER_CLEANUP_S:-1}"
  fi
}
case "$mode" in
  fail)
    [ -n "${PACKER_LOG_PATH:-}" ] && echo "googlecompute: Error creating instance: quota exceeded" >> "$PACKER_LOG_PATH"
    # Told to keep its VM, packer names it in its log as the googlecompute plugin does.
    case " $* " in *" -on-error=abort "*)
      [ -n "${PACKER_LOG_PATH:-}" ] && echo "2026/01/01 00:00:00 ui: ==> googlecompute.fixture: Instance packer-6583c0a5-1c2d-4e5f-8a9b-0c1d2e3f4a5b kept: -on-error=abort" >> "$PACKER_LOG_PATH" ;;
    esac
    echo "Build 'googlecompute.fixture' errored: quota exceeded" >&2; exit 1 ;;
  no-manifest) exit 0 ;;
  slow)
    trap 'clean_up; echo "$wm" >> "$root/packer-cleaned"; echo "Cleanly cancelled builds after being interrupted."; exit 1' INT TERM
    echo "$wm" >> "$root/packer-started"
    for _ in $(seq 600); do sleep 0.1; done
    exit 0 ;;
  rendezvous)
    # Waits (at most a minute) for the other workload manager's build to start: a release
    # that runs the builds one after the other makes the first one fail.
    echo "$wm" >> "$root/packer-started"
    for _ in $(seq 600); do
      [ "$(sort -u "$root/packer-started" | wc -l)" -ge 2 ] && break
      sleep 0.1
    done
    if [ "$(sort -u "$root/packer-started" | wc -l)" -lt 2 ]; then
      echo "Build 'googlecompute.fixture' errored: the other build never started" >&2; exit 1
    fi ;;
  finish-on-interrupt)
    trap 'write_manifest; echo "Build finished as the interrupt arrived."; exit 0' INT TERM
    echo "$wm" >> "$root/packer-started"
    for _ in $(seq 600); do sleep 0.1; done
    exit 0 ;;
esac
if [ -n "${FAKE_PACKER_DELAY:-}" ]; then
  # Each progress line is written in two pieces with a pause between, as a slow writer would.
  pause=$(awk -v d="$FAKE_PACKER_DELAY" 'BEGIN { print d / 20 }')
  for step in 1 2 3 4 5 6 7 8 9 10; do
    printf '    googlecompute.fixture: %s step %s of 10, ' "$wm" "$step"
    sleep "$pause"
    printf 'still building the %s image\n' "$wm"
    [ "$step" = 5 ] && printf '%s warning: halfway through the %s build\n' "$wm" "$wm" >&2
    sleep "$pause"
  done
fi
write_manifest
