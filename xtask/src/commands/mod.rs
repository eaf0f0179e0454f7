//! The subcommands of `cargo xtask slurm-image`: each reads, calls the pure core, writes and runs.

mod build;
mod check;
mod clean;
mod doctor;
mod fmt;
mod images;
mod init;
mod inputs;
mod launcher;
mod orphans;
mod prune;

use clap::Subcommand;
use xshell::Shell;

use crate::host::HostTree;
use crate::model::config::Config;
use crate::model::images_conf::ImagesConf;
use crate::model::template::Template;

#[derive(Subcommand)]
pub enum SlurmImage {
    Init(init::Init),
    Fmt(fmt::Fmt),
    Check(check::Check),
    Clean(clean::Clean),
    Build(build::Build),
    Launcher(launcher::Launcher),
    Images(images::Images),
    Prune(prune::Prune),
    Orphans(orphans::Orphans),
    Doctor(doctor::Doctor),
}

impl SlurmImage {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        match self {
            SlurmImage::Init(cmd) => cmd.run(sh, host),
            SlurmImage::Fmt(cmd) => cmd.run(sh, host),
            SlurmImage::Check(cmd) => cmd.run(sh, host),
            SlurmImage::Clean(cmd) => cmd.run(sh, host),
            SlurmImage::Build(cmd) => cmd.run(sh, host),
            SlurmImage::Launcher(cmd) => cmd.run(sh, host),
            SlurmImage::Images(cmd) => cmd.run(sh, host),
            SlurmImage::Prune(cmd) => cmd.run(sh, host),
            SlurmImage::Orphans(cmd) => cmd.run(sh, host),
            SlurmImage::Doctor(cmd) => cmd.run(sh, host),
        }
    }
}

/// Reads the config file of the host tree.
pub fn load_config(host: &HostTree) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(&host.config_file).map_err(|err| {
        anyhow::anyhow!(
            "cannot read {} ({err}): it holds the GCP project, zone and images to use",
            host.show(&host.config_file)
        )
    })?;
    Config::parse(&text, &host.show(&host.config_file))
}

/// Reads and checks images.conf; a broken one stops the command before any work is done.
pub fn read_images_conf(host: &HostTree) -> anyhow::Result<ImagesConf> {
    let shown = host.show(&host.images_conf);
    let text = std::fs::read_to_string(&host.images_conf).map_err(|err| {
        anyhow::anyhow!("cannot read {shown} ({err}): it pins the image each test cluster boots")
    })?;
    ImagesConf::parse(&text).map_err(|err| {
        anyhow::anyhow!(
            "{shown} is broken: {err:#}; fix it by hand (`git diff {shown}` shows what changed)"
        )
    })
}

/// Reads what the Packer template declares from its `*.pkr.hcl` files.
pub fn read_template(host: &HostTree) -> anyhow::Result<Template> {
    let mut texts = Vec::new();
    for path in host.template_files()? {
        let text = std::fs::read_to_string(&path)
            .map_err(|err| anyhow::anyhow!("cannot read {} ({err})", host.show(&path)))?;
        texts.push((host.show(&path), text));
    }
    Template::read(
        texts
            .iter()
            .map(|(name, text)| (name.as_str(), text.as_str())),
    )
}
