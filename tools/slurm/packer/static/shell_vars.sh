# Login-shell settings of the test VM (installed into /etc/profile.d): wider squeue and sinfo
# columns, so that long partition, job and node names stay readable.
export SQUEUE_FORMAT="%.8i %.20P %.70j %.8u %.4t %M %.20R %q"
export SINFO_FORMAT="%15P %20N %10T %25f %30G"
