# Inputs of the image build. `cargo xtask slurm-image build` renders them into
# build/<workload manager>.pkrvars.hcl; none has a default, so a missing value fails early.

variable "project_id" {
  type        = string
  description = "GCP project that runs the build VM and owns the image."
}

variable "zone" {
  type        = string
  description = "Zone of the build VM (IAP tunnels have been more reliable in us-central1-c)."
}

variable "workload_manager" {
  type        = string
  description = "Workload manager the image is for: slurm or pbs."

  validation {
    condition     = contains(["slurm", "pbs"], var.workload_manager)
    error_message = "The workload_manager must be \"slurm\" or \"pbs\"."
  }
}

variable "source_image_project" {
  type        = string
  description = "Project that publishes the source image (schedmd-slurm-public for slurm, ubuntu-os-cloud for pbs)."
}

variable "source_image_family" {
  type        = string
  description = "Family of the source image; the build starts from its newest image."
}

variable "ssh_username" {
  type        = string
  description = "User Packer connects as; must not be `packer`, which the schedmd source images already use."
}

variable "image_family" {
  type        = string
  description = "Family the new image joins."
}

variable "cpu_task_image" {
  type        = string
  description = "Docker image of CPU tasks, cached in the image so tests start fast."
}

variable "cuda_task_image" {
  type        = string
  description = "Docker image of CUDA tasks, cached in the image so tests start fast."
}

variable "launcher_deb" {
  type        = string
  description = "File name (not path) of the launcher package in build/, e.g. hpe-hpc-launcher_3.3.1-2_amd64.deb."
}

variable "manifest_path" {
  type        = string
  description = "Where the manifest post-processor writes, relative to this folder, e.g. build/slurm-manifest.json."
}

variable "input_fingerprint" {
  type        = string
  description = "Digest (32 lowercase hex digits) of everything the image is built from, put on the image as a label."

  # trim() rather than regex(): Packer before 1.7 has no regex functions, and this keeps
  # the template checkable with the packer that Debian ships.
  validation {
    condition     = length(var.input_fingerprint) == 32 && trim(var.input_fingerprint, "0123456789abcdef") == ""
    error_message = "The input_fingerprint must be 32 lowercase hexadecimal digits."
  }
}
