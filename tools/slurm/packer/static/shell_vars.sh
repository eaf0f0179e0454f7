# Environment of login shells on the test VM: PBS and locally built tools on PATH, and the
# shared container caches the image was filled with.
export PATH="/opt/pbs/bin:/opt/pbs/sbin:/usr/local/bin:/usr/local/sbin:$PATH"
export APPTAINER_CACHEDIR=/var/cache/apptainer
export SINGULARITY_CACHEDIR=/var/cache/apptainer
