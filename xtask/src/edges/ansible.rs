//! ansible-playbook: the only module that runs it, to check the template's playbook on this
//! machine before a VM runs it.

use std::path::Path;

use anyhow::bail;
use xshell::{cmd, Shell};

use crate::model::WorkloadManager;

/// How to get ansible-playbook on the systems the team uses.
pub const INSTALL_HINT: &str =
    "install Ansible's core (`apt-get install ansible-core` on Debian/Ubuntu, \
     `pipx install ansible-core` or `brew install ansible` elsewhere)";

/// Whether `ansible-playbook` is on PATH.
pub fn installed(sh: &Shell) -> bool {
    let path = sh.var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join("ansible-playbook").is_file())
}

/// `ansible-playbook --syntax-check` on `playbook`, with the inventory and the variables the
/// template's `ansible-local` provisioner gives it on the VM. Fails with ansible's own words.
pub fn syntax_check(sh: &Shell, playbook: &Path, wm: WorkloadManager) -> anyhow::Result<()> {
    if !installed(sh) {
        bail!("ansible-playbook is not on PATH, so the playbook cannot be checked: {INSTALL_HINT}");
    }
    let output = syntax_check_command(sh, playbook, wm)
        .ignore_status()
        .output()
        .map_err(|err| anyhow::anyhow!("cannot run ansible-playbook ({err}): {INSTALL_HINT}"))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let said = said
        .lines()
        .chain(String::from_utf8_lossy(&output.stdout).lines())
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("[WARNING]"))
        .collect::<Vec<_>>()
        .join(" ");
    bail!(
        "the playbook {} is broken (`ansible-playbook --syntax-check` said: {said}): fix it before a VM runs it",
        playbook.display()
    )
}

fn syntax_check_command<'a>(
    sh: &'a Shell,
    playbook: &Path,
    wm: WorkloadManager,
) -> xshell::Cmd<'a> {
    let wm_var = format!("workload_manager={wm}");
    // The VM runs it against itself; `localhost,` is an inventory of that one host, so the
    // check neither warns about an empty inventory nor reads the user's.
    cmd!(
        sh,
        "ansible-playbook --syntax-check -i localhost, -e {wm_var} {playbook}"
    )
    .env("ANSIBLE_NOCOLOR", "1")
    .quiet()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_runs_as_the_vm_would() {
        let sh = Shell::new().unwrap();
        assert_eq!(
            syntax_check_command(&sh, Path::new("ansible-playbook.yml"), WorkloadManager::Pbs)
                .to_string(),
            "ansible-playbook --syntax-check -i localhost, -e workload_manager=pbs ansible-playbook.yml"
        );
    }
}
