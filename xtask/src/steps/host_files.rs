//! The host tree's files commands read: the config, images.conf and the template, each checked.

use crate::host::{read_bounded, HostTree};
use crate::model::config::Config;
use crate::model::images_conf::ImagesConf;
use crate::model::template::Template;
use crate::model::WorkloadManager;

/// Reads the config file of the host tree.
pub fn load_config(host: &HostTree) -> anyhow::Result<Config> {
    let text = read_bounded(&host.config_file, TEXT_MAX_BYTES).map_err(|err| {
        anyhow::anyhow!(
            "cannot read {} ({err:#}): it holds the GCP project, zone and images to use",
            host.show(&host.config_file)
        )
    })?;
    Config::parse(&text, &host.show(&host.config_file))
}

/// The config and the template's files are a few KiB; one this large is not the right file.
const TEXT_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// images.conf is two lines; a file this large is not one.
const IMAGES_CONF_MAX_BYTES: u64 = 64 * 1024;

/// Reads and checks images.conf; a broken one stops the command before any work is done.
pub fn read_images_conf(host: &HostTree) -> anyhow::Result<ImagesConf> {
    let shown = host.show(&host.images_conf);
    let text = read_bounded(&host.images_conf, IMAGES_CONF_MAX_BYTES).map_err(|err| {
        anyhow::anyhow!("cannot read {shown} ({err:#}): it pins the image each test cluster boots")
    })?;
    let conf = ImagesConf::parse(&text).map_err(|err| {
        anyhow::anyhow!(
            "{shown} is broken: {err:#}; fix it by hand (`git diff {shown}` shows what changed)"
        )
    })?;
    // A command may read the file more than once (a build reads it before packer and again to
    // pin the image); the warnings are for the person, so they are said once.
    if crate::session::first_time("images.conf warnings") {
        for warning in images_conf_warnings(&conf, &shown) {
            errln!("warning: {warning}");
        }
    }
    Ok(conf)
}

/// What is odd but not broken in images.conf: a workload manager without its line, a line no
/// cluster reads. The file is left as it is either way.
fn images_conf_warnings(conf: &ImagesConf, shown: &str) -> Vec<String> {
    let missing = conf.missing().into_iter().map(|wm| {
        format!(
            "{shown} has no `{wm}` line, so the {wm} test clusters have no image to boot: \
             `cargo xtask slurm-image build --wm {wm}` pins one, or add `{wm}: <image name>` by hand \
             (`git log -p {shown}` shows the earlier ones)"
        )
    });
    let known = WorkloadManager::ALL.map(|wm| wm.key()).join(", ");
    let unknown = conf.unknown_keys().into_iter().map(|entry| {
        format!(
            "{shown} line {}: `{}` is not a workload manager ({known}), so no cluster reads it; \
             it is left as it is: remove the line if it is a typo",
            entry.line, entry.key
        )
    });
    missing.chain(unknown).collect()
}

/// Reads what the Packer template declares from its `*.pkr.hcl` files.
pub fn read_template(host: &HostTree) -> anyhow::Result<Template> {
    let mut texts = Vec::new();
    for path in host.template_files()? {
        let text = read_bounded(&path, TEXT_MAX_BYTES)
            .map_err(|err| anyhow::anyhow!("cannot read {} ({err:#})", host.show(&path)))?;
        texts.push((host.show(&path), text));
    }
    Template::read(
        texts
            .iter()
            .map(|(name, text)| (name.as_str(), text.as_str())),
    )
}
