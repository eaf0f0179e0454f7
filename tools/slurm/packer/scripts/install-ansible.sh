#!/bin/sh
# Installs Ansible on the build VM for the ansible-local provisioner, from the Ansible PPA
# rather than the older release Ubuntu 20.04 ships.
set -eux

# The source images may carry apt sources whose Release files changed their Label, Origin or
# Suite since the image was made; apt refuses to update from them unless told to accept that.
sudo apt-get update -y --allow-releaseinfo-change
sudo apt-get install -y software-properties-common
sudo add-apt-repository --yes --update ppa:ansible/ansible
sudo apt-get install -y ansible
