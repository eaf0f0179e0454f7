#!/usr/bin/env bash
# The team's checks of a freshly baked image, run at boot on a short-lived VM by
# `cargo xtask slurm-image build` (and release, verify) before the image is pinned.
#
# Edit it when the playbook changes what the image holds. The tool puts these variables in
# front of it: VERIFY_WORKLOAD_MANAGER (slurm or pbs), VERIFY_LAUNCHER_VERSION (the launcher
# baked in, e.g. 3.3.1-2), VERIFY_CPU_TASK_IMAGE and VERIFY_CUDA_TASK_IMAGE.
#
# Its report goes to the serial console, where the tool reads it, one line each behind
# "slurm-image-verify: ":
#   ok NAME: one line of detail        a check that passed
#   FAIL NAME: one line of detail      a check that failed (the image is not pinned)
#   version WHAT VERSION               the bill of materials, put on the image as labels
#   end                                the report is complete
set -u
PATH="$PATH:/opt/pbs/bin:/opt/pbs/sbin"

# The guest agent copies a startup script's output to the serial console.
say() { echo "slurm-image-verify: $*"; }
ok() { say "ok $1: $2"; }
fail() { say "FAIL $1: $2"; }
version() { [ -n "$2" ] && say "version $1 $2"; }
# The first line a command prints, or nothing when it fails or is missing.
first_line() { "$@" 2>/dev/null | head -n 1; }
enabled() { [ "$(systemctl is-enabled "$1" 2>/dev/null)" = enabled ]; }

say "start ${VERIFY_WORKLOAD_MANAGER:-?} image"

case "${VERIFY_WORKLOAD_MANAGER:-}" in
  slurm)
    if enabled slurmctld && enabled slurmd; then
      ok slurm-daemons "slurmctld and slurmd are enabled"
    else
      fail slurm-daemons "slurmctld: $(systemctl is-enabled slurmctld 2>&1 | head -n 1), slurmd: $(systemctl is-enabled slurmd 2>&1 | head -n 1)"
    fi
    slurm=$(first_line sinfo --version)
    if [ -n "$slurm" ]; then
      ok sinfo "$slurm"
      version slurm "${slurm##* }"
    else
      fail sinfo "sinfo --version failed or sinfo is missing"
    fi
    ;;
  pbs)
    missing=""
    for program in qsub qstat pbsnodes pbs_server pbs_mom; do
      command -v "$program" > /dev/null || missing="$missing $program"
    done
    if [ -z "$missing" ]; then
      ok pbs-programs "qsub, qstat, pbsnodes, pbs_server and pbs_mom are installed"
    else
      fail pbs-programs "missing:$missing"
    fi
    if enabled pbs; then ok pbs-service "pbs.service is enabled"; else fail pbs-service "pbs.service is not enabled"; fi
    pbs=$(first_line qstat --version)
    version pbs "${pbs##* }"
    ;;
  *) fail workload-manager "VERIFY_WORKLOAD_MANAGER is ${VERIFY_WORKLOAD_MANAGER:-unset}, not slurm or pbs" ;;
esac

launcher=$(dpkg-query -W -f='${Version}' hpe-hpc-launcher 2>/dev/null)
if [ "$launcher" = "${VERIFY_LAUNCHER_VERSION:-}" ]; then
  ok launcher "hpe-hpc-launcher $launcher is installed"
else
  fail launcher "hpe-hpc-launcher is ${launcher:-not installed}, expected ${VERIFY_LAUNCHER_VERSION:-?}"
fi
version launcher "$launcher"
if enabled launcher; then ok launcher-service "launcher.service is enabled"; else fail launcher-service "launcher.service is not enabled"; fi

# The VM has no GPU, so nvidia-smi cannot work: the driver's kernel module must be installed.
nvidia=$(modinfo -F version nvidia 2>/dev/null)
if [ -n "$nvidia" ]; then ok nvidia-driver "the nvidia module $nvidia is installed"; else fail nvidia-driver "no nvidia kernel module (modinfo nvidia)"; fi
version nvidia "$nvidia"
version kernel "$(uname -r)"

podman=$(first_line podman --version)
if [ -n "$podman" ]; then ok podman "$podman"; else fail podman "podman is missing"; fi
version podman "${podman##* }"
singularity=$(first_line apptainer --version)
[ -n "$singularity" ] || singularity=$(first_line singularity --version)
if [ -n "$singularity" ]; then ok singularity "$singularity"; else fail singularity "neither apptainer nor singularity is installed"; fi
version apptainer "${singularity##* }"
enroot=$(first_line enroot version)
if [ -n "$enroot" ]; then ok enroot "enroot $enroot"; else fail enroot "enroot is missing"; fi
version enroot "${enroot##* }"

# The task images the clusters ask for, cached the way the playbook caches them.
for kind in cpu cuda; do
  if [ "$kind" = cpu ]; then image="${VERIFY_CPU_TASK_IMAGE:-}"; else image="${VERIFY_CUDA_TASK_IMAGE:-}"; fi
  [ -n "$image" ] || continue
  if [ -e "/srv/singularity/$image" ]; then
    ok "singularity-cache-$kind" "/srv/singularity/$image"
  else
    fail "singularity-cache-$kind" "/srv/singularity/$image is missing"
  fi
  sqsh="/srv/enroot/${image//[\/:]/+}.sqsh"
  if [ -e "$sqsh" ]; then ok "enroot-cache-$kind" "$sqsh"; else fail "enroot-cache-$kind" "$sqsh is missing"; fi
  version "$kind-task-image" "$image"
done

say end
