//! The files a released image would hold that its branch lacks: a release refuses them, a
//! build names them. git reads, `model::packer_inputs` decides.

use xshell::Shell;

use crate::edges::git::{self, Checkout};
use crate::host::HostTree;
use crate::model::packer_inputs::{
    build_warning, release_blockers, release_refusal, uncommitted_inputs, Difference, Uncommitted,
};

/// Refuses, naming each file, when the checkout has a tracked file with changes or the
/// template folder has an untracked or ignored file packer reads; `--redo` keeps images.conf.
pub fn refuse_uncommitted(
    sh: &Shell,
    host: &HostTree,
    checkout: &Checkout,
    redo: bool,
) -> anyhow::Result<()> {
    let template_dir = host.show(&host.packer_dir);
    let mut status: Vec<Uncommitted> = checkout
        .changed
        .iter()
        .map(|path| Uncommitted {
            path: path.clone(),
            difference: Difference::Changed,
        })
        .collect();
    status.extend(git::uncommitted_under(sh, &host.root, &template_dir)?.unwrap_or_default());
    let images_conf = host.show(&host.images_conf);
    let keeps = redo.then_some(images_conf.as_str());
    match release_refusal(&release_blockers(&status, &template_dir, keeps), keeps) {
        Some(why) => anyhow::bail!("{why}"),
        None => Ok(()),
    }
}

/// Names the files packer reads that differ from HEAD, as a warning: a build is also how one
/// tries a change. Outside a git checkout there is nothing to compare with, and nothing said.
pub fn warn_uncommitted_inputs(sh: &Shell, host: &HostTree) {
    let template_dir = host.show(&host.packer_dir);
    match git::uncommitted_under(sh, &host.root, &template_dir) {
        Ok(Some(status)) => {
            if let Some(warning) = build_warning(&uncommitted_inputs(&status, &template_dir)) {
                errln!("warning: {warning}");
            }
        }
        Ok(None) => {}
        Err(err) => errln!(
            "warning: {err:#}; whether packer's inputs are committed is unknown, and the build goes on"
        ),
    }
}
