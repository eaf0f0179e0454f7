# Bakes the Compute Engine image that the HPC test clusters boot, for one workload manager.
# Run it through `cargo xtask slurm-image build`, which renders the variables file, runs
# `packer build -var-file=build/<wm>.pkrvars.hcl .` from this folder and pins the new image.

source "googlecompute" "hpc" {
  project_id   = var.project_id
  zone         = var.zone
  machine_type = "n1-standard-8"
  disk_size    = 110
  subnetwork   = "default"

  # The build VM gets no public address; Packer reaches it through an IAP tunnel.
  omit_external_ip = true
  use_internal_ip  = true
  use_iap          = true

  # Project-wide keys must not be able to log in to the build VM or, later, to the image.
  metadata = {
    block-project-ssh-keys = "true"
  }
  temporary_key_pair_type = "ed25519"

  # The user is not `packer` because the schedmd source images are themselves built by Packer
  # and already carry a `packer` user whose settings would get in the way.
  ssh_username = var.ssh_username

  source_image_project_id = [var.source_image_project]
  source_image_family     = var.source_image_family

  # `{{timestamp}}` is the Unix time of the build, e.g. det-environments-slurm-ci-1717047568.
  image_name        = "det-environments-${var.workload_manager}-ci-{{timestamp}}"
  image_family      = var.image_family
  image_description = "HPC ${var.workload_manager} testing VM ${var.launcher_deb}"
  image_labels = {
    workload-manager  = var.workload_manager
    input-fingerprint = var.input_fingerprint
  }
}

build {
  sources = ["source.googlecompute.hpc"]

  provisioner "file" {
    source      = "static"
    destination = "/tmp"
  }

  # Only the one package is uploaded: a slurm and a pbs build may share build/ at the same
  # time, and each must not ship the other's variables, manifest or log.
  provisioner "file" {
    source      = "build/${var.launcher_deb}"
    destination = "/tmp/"
  }

  provisioner "shell" {
    environment_vars = ["WORKLOAD_MANAGER=${var.workload_manager}"]
    execute_command  = "chmod +x {{ .Path }}; sudo {{ .Vars }} {{ .Path }}"
    inline_shebang   = "/bin/bash -eux"
    inline = [
      "if [ \"$WORKLOAD_MANAGER\" = slurm ]; then mkdir -p /usr/local/etc/slurm; mv /tmp/static/slurm.conf /tmp/static/gres.conf /tmp/static/cgroup.conf /usr/local/etc/slurm/; fi",
      "if [ \"$WORKLOAD_MANAGER\" = pbs ]; then mv /tmp/static/motd /etc/motd; fi",
      "mkdir -p /etc/determined /etc/containers /etc/profile.d /usr/share/containers/oci/hooks.d",
      "mv /tmp/static/master.yaml /etc/determined/master.yaml",
      "mv /tmp/static/registries.conf /etc/containers/registries.conf",
      "mv /tmp/static/shell_vars.sh /etc/profile.d/shell_vars.sh",
      "mv /tmp/static/oci-nvidia-hook.json /usr/share/containers/oci/hooks.d/oci-nvidia-hook.json",
      "mkdir -p /var/tmp/launcher",
      "rm -rf /tmp/static",
    ]
  }

  # Ansible comes from its PPA because the release in Ubuntu 20.04 is too old for the
  # ansible.builtin module names the playbook uses.
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo {{ .Vars }} {{ .Path }}"
    inline_shebang  = "/bin/bash -eux"
    inline = [
      "export DEBIAN_FRONTEND=noninteractive",
      "apt-get update",
      "apt-get install -y software-properties-common",
      "add-apt-repository --yes --update ppa:ansible/ansible",
      "apt-get install -y ansible",
    ]
  }

  # Each value is passed as its own --extra-vars so that no quoting is needed on the VM.
  provisioner "ansible-local" {
    playbook_file = "ansible/playbook.yml"
    extra_arguments = [
      "--extra-vars", "workload_manager=${var.workload_manager}",
      "--extra-vars", "launcher_deb=/tmp/${var.launcher_deb}",
      "--extra-vars", "cpu_task_image=${var.cpu_task_image}",
      "--extra-vars", "cuda_task_image=${var.cuda_task_image}",
    ]
  }

  # The package is installed by now, and the temporary key must not stay in the image,
  # where it would let anyone holding it log in.
  provisioner "shell" {
    inline = [
      "sudo rm -f /tmp/${var.launcher_deb}",
      "sudo rm -f /root/.ssh/authorized_keys \"$HOME/.ssh/authorized_keys\"",
    ]
  }

  post-processor "manifest" {
    output     = var.manifest_path
    strip_path = true
    custom_data = {
      workload_manager  = var.workload_manager
      launcher_deb      = var.launcher_deb
      input_fingerprint = var.input_fingerprint
    }
  }
}
