# Packer and plugin versions this template needs. `cargo xtask slurm-image` (init, check, build)
# reads the required_version line below, so keep it on one line in the form `">= X.Y.Z"`.
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    googlecompute = {
      version = ">= 1.1.1"
      source  = "github.com/hashicorp/googlecompute"
    }
  }
}
