#!/usr/bin/env bash
# The stand-in ansible-playbook of every test copy of the host tree. The real syntax check costs
# about a second of CPU a run, and only the playbook tests (tests/it/playbook.rs, which ask for
# the real one) are about it. It answers the two calls the tool makes, as ansible-playbook
# 2.14 does; a playbook that is not there fails as it would. It writes no file: the release
# tests' git trees must stay clean.
set -u
case "${1:-}" in
  --version) echo "ansible-playbook [core 2.14.18] (stand-in)"; exit 0 ;;
  --syntax-check)
    playbook="${!#}"
    if [ ! -f "$playbook" ]; then
      printf 'ERROR! the playbook: %s could not be found\n' "$playbook" >&2
      exit 1
    fi
    printf '\nplaybook: %s\n' "$playbook"
    exit 0 ;;
esac
echo "stand-in ansible-playbook: unexpected $*" >&2
exit 64
