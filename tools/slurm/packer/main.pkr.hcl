# The Compute Engine image an HPC test cluster boots, baked for one workload manager (slurm or
# pbs). `cargo xtask slurm-image build` renders the variables and runs packer from this folder.

packer {
  required_plugins {
    googlecompute = {
      source  = "github.com/hashicorp/googlecompute"
      version = ">= 1.0.0"
    }
    # Packer stopped shipping the Ansible provisioners in its own binary, so the plugin that
    # carries ansible-local has to be named here for `packer init` to fetch it.
    ansible = {
      source  = "github.com/hashicorp/ansible"
      version = ">= 1.0.0"
    }
  }
}

# The inputs every build gets. They default to empty strings, as they always have, so that a
# variables file written for the old Makefile still fits.
variables {
  ssh_username      = ""
  workload_manager  = ""
  image_project_id  = ""
  image_family      = ""
  launcher_deb_name = ""
  cpu_image_name    = ""
  cuda_image_name   = ""
}

# Optional inputs. Left at their defaults, the build is what it always was.

variable "image_labels" {
  type        = map(string)
  default     = {}
  description = "Labels put on the new image, such as a fingerprint of what went into it."
}

variable "source_image" {
  type        = string
  default     = ""
  description = "Exact image to start from, in image_project_id. Empty means the newest image of image_family."
}

locals {
  # Where the uploads land on the build VM.
  static_upload_dir   = "/tmp/static"
  launcher_upload_dir = "/tmp/build"
  launcher_deb_path   = "${local.launcher_upload_dir}/${var.launcher_deb_name}"

  # Where the configuration files end up in the image.
  slurm_conf_dir     = "/usr/local/etc/slurm"
  determined_dir     = "/etc/determined"
  containers_dir     = "/etc/containers"
  oci_hooks_dir      = "/usr/share/containers/oci"
  launcher_jobs_root = "/var/tmp/launcher"
}

source "googlecompute" "determined-hpc-image" {
  project_id = "determined-ai"
  # IAP tunnels came up slowly, and builds failed now and then, in us-west1-b; this zone has
  # been dependable.
  zone         = "us-central1-c"
  machine_type = "n1-standard-8"
  disk_size    = 110
  subnetwork   = "default"

  source_image_project_id = [var.image_project_id]
  source_image            = var.source_image
  source_image_family     = var.source_image == "" ? var.image_family : ""

  # Every image joins the one family, whatever its workload manager.
  image_family      = "det-environments-slurm-ci"
  image_name        = "det-environments-${var.workload_manager}-ci-{{timestamp}}"
  image_description = "HPC ${var.workload_manager} testing VM ${var.launcher_deb_name}"
  image_labels      = var.image_labels

  # No public address: packer reaches the VM over IAP, and keys set on the project cannot log in.
  omit_external_ip = true
  use_internal_ip  = true
  use_iap          = true
  metadata = {
    block-project-ssh-keys = "true"
  }

  # The schedmd source images were baked by packer themselves and already have a `packer` user,
  # whose metadata-managed keys clash with ours; hence a different user (packer2), and no key of
  # this build left behind in the image.
  ssh_username              = var.ssh_username
  temporary_key_pair_type   = "ed25519"
  ssh_clear_authorized_keys = true
}

build {
  name    = "determined-hpc-image"
  sources = ["source.googlecompute.determined-hpc-image"]

  # The launcher is uploaded into this folder, which has to exist first.
  provisioner "shell" {
    inline = ["mkdir -p ${local.launcher_upload_dir}"]
  }

  provisioner "file" {
    source      = "static"
    destination = local.static_upload_dir
  }

  # Only the package itself: build/ may also hold an older package or a download in progress,
  # which must not end up in the image.
  provisioner "file" {
    source      = "build/${var.launcher_deb_name}"
    destination = "${local.launcher_upload_dir}/"
  }

  provisioner "shell" {
    inline = [
      "if [ '${var.workload_manager}' = slurm ]; then sudo mv ${local.static_upload_dir}/slurm.conf ${local.static_upload_dir}/gres.conf ${local.static_upload_dir}/cgroup.conf ${local.slurm_conf_dir}/; fi",
      "if [ '${var.workload_manager}' = pbs ]; then sudo mv ${local.static_upload_dir}/motd /etc/motd; fi",
      "sudo mkdir -p ${local.determined_dir} ${local.launcher_jobs_root} ${local.containers_dir} ${local.oci_hooks_dir}",
      "sudo mv ${local.static_upload_dir}/master.yaml ${local.determined_dir}/master.yaml",
      "sudo mv -f ${local.static_upload_dir}/registries.conf ${local.containers_dir}/registries.conf",
      "sudo mv -f ${local.static_upload_dir}/shell_vars.sh /etc/profile.d/shell_vars.sh",
      "sudo mv -f ${local.static_upload_dir}/oci-nvidia-hook.json ${local.oci_hooks_dir}/oci-nvidia-hook.json",
    ]
  }

  provisioner "shell" {
    script = "scripts/install-ansible.sh"
  }

  provisioner "ansible-local" {
    playbook_file = "ansible-playbook.yml"
    extra_arguments = [
      "--verbose",
      "--extra-vars", "\"workload_manager=${var.workload_manager}\"",
      "--extra-vars", "\"launcher_deb=${local.launcher_deb_path}\"",
      "--extra-vars", "\"cpu_image_name=${var.cpu_image_name}\"",
      "--extra-vars", "\"cuda_image_name=${var.cuda_image_name}\"",
    ]
  }

  # The xtask reads the new image's name (artifact_id) from here.
  post-processor "manifest" {
    output = "build/manifest.json"
  }
}
