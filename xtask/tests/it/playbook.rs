//! The playbook is checked with `ansible-playbook --syntax-check` by `check` and before a build
//! starts a VM, through the built xtask with the real ansible-playbook (every other test has a
//! stand-in) and a stand-in packer.
//! The live playbook (this repository's, or the real host repository's in its place) is
//! checked the same way, for both workload managers.

use crate::support::{require_tool, HostCopy, STAND_IN_PACKER};

const PLAYBOOK: &str = "tools/slurm/packer/ansible-playbook.yml";
const SEED: &str =
    "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n";

/// Two ways a playbook breaks: YAML that does not parse, and a task no module runs.
const BROKEN: [(&str, &str); 2] = [
    (
        "- hosts: all\n  tasks:\n    - name: Misindented\n     ansible.builtin.debug:\n        msg: x\n",
        "Syntax Error while loading YAML",
    ),
    (
        "- hosts: all\n  tasks:\n    - name: A module that does not exist\n      ansible.builtin.no_such_module: {}\n",
        "couldn't resolve module/action 'ansible.builtin.no_such_module'",
    ),
];

fn host() -> Option<HostCopy> {
    require_tool("ansible-playbook")?;
    let host = HostCopy::new();
    host.real_ansible_playbook();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write("tools/slurm/terraform/images.conf", SEED);
    host.write(
        "tools/slurm/packer/build/hpe-hpc-launcher_3.3.1-2_amd64.deb",
        b"launcher package bytes",
    );
    Some(host)
}

#[test]
fn check_passes_the_fixtures_playbook_and_fails_a_broken_copy_naming_the_fault() {
    let Some(host) = host() else { return };
    let run = host.run(&["check"]).ok();
    assert!(
        run.stdout.contains(&format!(
            "playbook {PLAYBOOK} passes `ansible-playbook --syntax-check`"
        )),
        "{}",
        run.stdout
    );
    for (broken, fault) in BROKEN {
        host.write(PLAYBOOK, broken);
        host.run(&["check"]).fails_with(&[
            &format!("the playbook {PLAYBOOK} is broken"),
            fault,
            "fix it before a VM runs it",
        ]);
    }
}

#[test]
fn a_build_with_a_broken_playbook_stops_before_packer_and_changes_nothing() {
    let Some(host) = host() else { return };
    let (broken, fault) = BROKEN[1];
    host.write(PLAYBOOK, broken);
    host.run(&["build", "--offline"])
        .exits_with(3, &[&format!("the playbook {PLAYBOOK} is broken"), fault]);
    assert!(
        !host.packer_calls().iter().any(|c| c.contains("| build")),
        "{:?}",
        host.packer_calls()
    );
    assert!(
        host.api().requests().is_empty(),
        "no gcloud call was needed"
    );
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);

    // The dry run says so among what would stop a real build, and exits as the build would.
    let run = host.run(&["build", "--offline", "--dry-run"]).stops();
    assert!(
        run.stdout
            .contains(&format!("#   playbook: the playbook {PLAYBOOK} is broken")),
        "{}",
        run.stdout
    );
}

#[test]
fn a_template_naming_a_missing_playbook_is_told_so() {
    let Some(host) = host() else { return };
    std::fs::remove_file(host.path(PLAYBOOK)).unwrap();
    host.run(&["check"]).fails_with(&[
        &format!("the template's ansible provisioner runs {PLAYBOOK}, which does not exist"),
        "fix `playbook_file`",
    ]);
}

#[test]
fn the_live_playbook_passes_the_syntax_check_for_both_workload_managers() {
    if require_tool("ansible-playbook").is_none() {
        return;
    }
    let host = HostCopy::live();
    host.real_ansible_playbook();
    for wm in ["slurm", "pbs"] {
        // A dry run checks the playbook the template names, as a build does before a VM starts.
        let run = host
            .run(&["build", "--offline", "--dry-run", "--wm", wm])
            .stops();
        assert!(
            run.stdout.contains(&format!(
                "playbook: {PLAYBOOK} passes `ansible-playbook --syntax-check`"
            )),
            "{wm}: {}",
            run.stdout
        );
    }
}
