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

/// The first line of `ansible-playbook --version`: `ansible-playbook [core 2.14.18]`.
pub fn version(sh: &Shell) -> anyhow::Result<String> {
    let out = cmd!(sh, "ansible-playbook --version")
        .quiet()
        .ignore_stderr()
        .read()
        .map_err(|err| anyhow::anyhow!("cannot run ansible-playbook ({err})"))?;
    Ok(out.lines().next().unwrap_or_default().trim().to_string())
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
    let said = reason(&format!(
        "{}\n\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    ));
    bail!(
        "the playbook {} is broken (`ansible-playbook --syntax-check` said: {said}): fix it before a VM runs it",
        playbook.display()
    )
}

/// The first two paragraphs of ansible's complaint on one line: what is wrong, and where. The
/// rest is a quote of the offending lines, which the file itself shows better.
fn reason(output: &str) -> String {
    let mut paragraphs = Vec::new();
    let mut current = Vec::new();
    for line in output.lines().map(str::trim) {
        if line.starts_with("[WARNING]") {
            continue;
        }
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join(" "));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join(" "));
    }
    paragraphs.truncate(2);
    if paragraphs.is_empty() {
        return "nothing".to_string();
    }
    paragraphs.join(" ")
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
    fn ansibles_complaint_is_cut_to_what_and_where() {
        let output = "ERROR! couldn't resolve module/action 'no.such.module'. This often indicates a\n\
                      misspelling.\n\nThe error appears to be in '/tmp/b1.yml': line 3, column 7, but may\n\
                      be elsewhere.\n\nThe offending line appears to be:\n\n  tasks:\n    - name: x\n";
        assert_eq!(
            reason(output),
            "ERROR! couldn't resolve module/action 'no.such.module'. This often indicates a misspelling. \
             The error appears to be in '/tmp/b1.yml': line 3, column 7, but may be elsewhere."
        );
        assert_eq!(reason("[WARNING]: x\n\n"), "nothing");
    }

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
