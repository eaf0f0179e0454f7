//! The playbook checked before a VM runs it: `ansible-playbook --syntax-check` on each one the
//! template names.

use std::path::Path;

use anyhow::bail;
use xshell::Shell;

use crate::edges::ansible;
use crate::host::HostTree;
use crate::model::template::Template;
use crate::model::WorkloadManager;

/// Runs `ansible-playbook --syntax-check` on the playbook of each ansible provisioner of the
/// template, and returns them as shown. A playbook named by an expression cannot be found
/// here: that is said, and it is left to the VM.
pub fn check_playbooks(
    sh: &Shell,
    host: &HostTree,
    template: &Template,
    wm: WorkloadManager,
) -> anyhow::Result<Vec<String>> {
    let mut checked = Vec::new();
    for playbook in &template.playbooks {
        if playbook.is_empty() {
            errln!(
                "note: the template names its playbook with an expression, so it is not checked before the build; \
                 write `playbook_file` as a plain path relative to {} to have it checked",
                host.show(&host.packer_dir)
            );
            continue;
        }
        let path = host.packer_dir.join(playbook);
        let shown = host.show(&path);
        if !path.is_file() {
            bail!("the template's ansible provisioner runs {shown}, which does not exist: fix `playbook_file` or add the file");
        }
        ansible::syntax_check(sh, Path::new(&shown), wm)?;
        checked.push(shown);
    }
    Ok(checked)
}

/// A broken playbook is found here in a second, not on the VM after half an hour; without
/// ansible-playbook that is said, and the build goes on.
pub fn check_playbook_before_vm(
    sh: &Shell,
    host: &HostTree,
    template: &Template,
    wms: &[WorkloadManager],
) -> anyhow::Result<()> {
    if !ansible::installed(sh) {
        errln!(
            "note: ansible-playbook is not installed, so the playbook is checked only on the VM: {}",
            ansible::INSTALL_HINT
        );
        return Ok(());
    }
    for &wm in wms {
        check_playbooks(sh, host, template, wm)?;
    }
    Ok(())
}
