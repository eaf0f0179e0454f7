//! `doctor` through the built xtask: a stand-in packer, the real gcloud against the loopback
//! Compute API, a loopback Artifactory. Each check is broken on its own, and the others must
//! still report.

use std::process::Command;

use crate::support::artifactory::{Faults, Server};
use crate::support::{require_tool, HostCopy, Run};

const SLURM_PINNED: &str = "det-environments-slurm-ci-1717047568";
const PBS_PINNED: &str = "det-environments-pbs-ci-1717016272";
const SEED: &str =
    "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n";
const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";

/// Every check, in the order doctor prints them.
const CHECKS: [&str; 11] = [
    "config",
    "images.conf",
    "template",
    "packer",
    "packer plugins",
    "gcloud",
    "GCP project",
    "pinned images",
    "artifactory",
    "ansible-playbook",
    "git",
];

/// A machine where every check passes: both pinned images READY in the project, a release on
/// Artifactory, nothing in build/.
fn healthy() -> Option<(HostCopy, Server)> {
    require_tool("gcloud")?;
    require_tool("git")?;
    let host = HostCopy::new();
    host.stand_in("packer", crate::support::STAND_IN_PACKER);
    host.write("tools/slurm/terraform/images.conf", SEED);
    host.api().add_image(
        SLURM_PINNED,
        1_717_047_568,
        "READY",
        &[],
        "HPC slurm testing VM",
    );
    host.api().add_image(
        PBS_PINNED,
        1_717_016_272,
        "READY",
        &[],
        "HPC pbs testing VM",
    );
    // A git checkout with everything committed, so that a release would start too.
    crate::support::commit_host_tree(&host);
    let server = Server::start();
    server.add(LAUNCHER, b"launcher".to_vec());
    Some((host, server))
}

fn doctor_command(host: &HostCopy, artifactory_url: &str) -> Command {
    let mut cmd = host.xtask(&["doctor"]);
    cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", artifactory_url)
        .env("SLURM_IMAGE_RETRY_DELAY_MS", "10")
        .env("SLURM_IMAGE_STALL_TIMEOUT_S", "1")
        .env("NO_PROXY", "127.0.0.1");
    cmd
}

/// Each check's line, by check, in the order printed; every check must have exactly one.
fn lines(run: &Run) -> Vec<(&'static str, String)> {
    let out: Vec<&str> = run.stdout.lines().collect();
    let found: Vec<(&'static str, String)> = CHECKS
        .iter()
        .map(|check| {
            let matching: Vec<&&str> = out
                .iter()
                .filter(|l| {
                    l.get(6..)
                        .is_some_and(|rest| rest.starts_with(&format!("{check}: ")))
                })
                .collect();
            assert_eq!(
                matching.len(),
                1,
                "{check}: one line expected\n{}",
                run.stdout
            );
            (*check, matching[0].to_string())
        })
        .collect();
    let order: Vec<usize> = found
        .iter()
        .map(|(_, line)| out.iter().position(|l| l == line).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", run.stdout);
    found
}

/// Asserts every check passed but `failed` (each with its mark, `FAIL` or `warn`, and a fix
/// containing the text given) and `skipped`; ansible-playbook may warn where it is missing.
fn assert_only(run: &Run, failed: &[(&str, &str, &str)], skipped: &[&str]) {
    for (check, line) in lines(run) {
        if let Some((_, mark, fix)) = failed.iter().find(|(c, _, _)| *c == check) {
            assert!(
                line.starts_with(&format!("{mark}  {check}: ")),
                "{check} should be {mark}:\n{}",
                run.stdout
            );
            let (_, said_fix) = line
                .split_once("; fix: ")
                .unwrap_or_else(|| panic!("{check} shows no fix: {line}"));
            assert!(said_fix.contains(fix), "{check}: fix lacks {fix:?}: {line}");
        } else if skipped.contains(&check) {
            assert!(line.starts_with("skip  "), "{check}:\n{}", run.stdout);
        } else if check == "ansible-playbook" {
            assert!(
                line.starts_with("ok    ") || line.starts_with("warn  "),
                "{line}"
            );
        } else {
            assert!(
                line.starts_with("ok    "),
                "{check} should pass:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
}

#[test]
fn a_ready_machine_passes_every_check_and_the_slow_ones_wait_side_by_side() {
    let Some((host, server)) = healthy() else {
        return;
    };
    // One doctor run, with git and gcloud behind wrappers that only note and hold their waits
    // (and then run the real ones), shows both that every check passes and how they wait.
    //
    // Each gcloud call, and the git call of each of the three git checks (its version, the
    // identity, the search for removed make targets), notes when its wait began, then waits
    // until all six calls have begun (or two minutes have passed) and notes when it ended: they
    // must all wait at the same time. A doctor that ran them one after the other ends its first
    // wait before the next begins. (Overlap, not a stopwatch, so a loaded machine cannot fail
    // the test.) The release checks' git calls, one after another in a check of their own, pass
    // straight through.
    let log = host.path("waits.log");
    for (name, real) in [
        ("git", require_tool("git").unwrap()),
        ("gcloud", require_tool("gcloud").unwrap()),
    ] {
        host.stand_in(
            name,
            &format!(
                "#!/bin/sh\n\
                 case \"{name} $*\" in gcloud*|*' --version'*|*' var '*|*' grep '*)\n\
                 echo \"start $(date +%s.%N)\" >> {log}\n\
                 for _ in $(seq 2400); do [ \"$(grep -c '^start' {log})\" -ge 6 ] && break; sleep 0.05; done\n\
                 echo \"end $(date +%s.%N)\" >> {log}\n\
                 esac\n\
                 exec {real} \"$@\"\n",
                log = log.display(),
                real = real.display()
            ),
        );
    }
    // The built binary, whose gcloud calls the stand-in above times.
    let run = Run::of(doctor_command(&host, &server.folder_url())).ok();
    assert_only(&run, &[], &[]);
    for check in ["format", "playbook", "checkout", "release branch"] {
        assert!(
            run.stdout.contains(&format!("\nok    {check}: ")),
            "{check} should pass:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.ends_with("ready to build and to release\n"),
        "{}",
        run.stdout
    );
    assert!(host.api().only_reads());
    let waits = std::fs::read_to_string(&log).unwrap();
    let times = |kind: &str| -> Vec<f64> {
        waits
            .lines()
            .filter_map(|l| l.strip_prefix(kind))
            .map(|t| t.trim().parse().unwrap())
            .collect()
    };
    let (starts, ends) = (times("start "), times("end "));
    assert_eq!(
        starts.len(),
        6,
        "three git calls (its version, the identity, the search for removed make targets) and three gcloud calls:\n{waits}"
    );
    let last_start = starts.iter().cloned().fold(f64::MIN, f64::max);
    let first_end = ends.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        last_start < first_end,
        "the checks waited one after the other, not side by side:\n{waits}"
    );
}

/// Breaks a host; returns the Artifactory URL doctor is given.
type Setup = Box<dyn Fn(&HostCopy, &Server) -> String>;

/// One way to break one check.
struct Case {
    what: &'static str,
    setup: Setup,
    /// (check, mark, text of its fix)
    failed: (&'static str, &'static str, &'static str),
    /// Checks that need the broken one and say they were skipped.
    skipped: &'static [&'static str],
}

#[test]
fn each_check_fails_on_its_own_with_its_fix_while_the_others_report() {
    if require_tool("gcloud").is_none() || require_tool("git").is_none() {
        return;
    }
    let closed_port = "http://127.0.0.1:9/artifactory/launchers/hpc/".to_string();
    let cases = vec![
        Case {
            what: "a config with a wrong type",
            setup: Box::new(|h, s| {
                let config = h
                    .read("tools/slurm/packer/slurm-image.toml")
                    .replace("keep = 6", "keep = \"six\"");
                h.write("tools/slurm/packer/slurm-image.toml", config);
                s.folder_url()
            }),
            failed: ("config", "FAIL", "edit tools/slurm/packer/slurm-image.toml"),
            skipped: &["GCP project", "pinned images", "artifactory"],
        },
        Case {
            what: "an images.conf with a key twice",
            setup: Box::new(|h, s| {
                h.write(
                    "tools/slurm/terraform/images.conf",
                    format!("{SEED}slurm: {SLURM_PINNED}\n"),
                );
                s.folder_url()
            }),
            failed: ("images.conf", "FAIL", "fix it by hand"),
            skipped: &["pinned images"],
        },
        Case {
            what: "a template without a contract variable",
            setup: Box::new(|h, s| {
                let template = h
                    .read("tools/slurm/packer/main.pkr.hcl")
                    .replace("  cpu_image_name    = \"\"\n", "");
                h.write("tools/slurm/packer/main.pkr.hcl", template);
                s.folder_url()
            }),
            failed: ("template", "FAIL", "fix the template in tools/slurm/packer"),
            skipped: &["packer plugins"],
        },
        Case {
            what: "an old packer",
            setup: Box::new(|h, s| {
                h.stand_in(
                    "packer",
                    &crate::support::STAND_IN_PACKER.replace("${FAKE_PACKER:-}\" in", "1.6.6\" in"),
                );
                s.folder_url()
            }),
            failed: ("packer", "FAIL", "install packer >= 1.7"),
            skipped: &["packer plugins"],
        },
        Case {
            what: "packer's plugins missing",
            setup: Box::new(|h, s| {
                h.stand_in(
                    "packer",
                    &crate::support::STAND_IN_PACKER.replace("${FAKE_PACKER_PLUGINS:-}", "none"),
                );
                s.folder_url()
            }),
            failed: ("packer plugins", "FAIL", "cargo xtask slurm-image init"),
            skipped: &[],
        },
        Case {
            what: "no gcloud account",
            setup: Box::new(|h, s| {
                // gcloud reads the account from its configuration when the variable is empty.
                let real = require_tool("gcloud").unwrap();
                h.stand_in(
                    "gcloud",
                    &format!(
                        "#!/bin/sh\nunset CLOUDSDK_CORE_ACCOUNT\nexec {} \"$@\"\n",
                        real.display()
                    ),
                );
                s.folder_url()
            }),
            failed: ("gcloud", "FAIL", "gcloud auth login"),
            // Logged out, the checks that read the project say so once, on the gcloud line.
            skipped: &["GCP project", "pinned images"],
        },
        Case {
            what: "the project refusing the account",
            setup: Box::new(|h, s| {
                h.api().forbid_path("/compute/v1/projects/determined-ai");
                s.folder_url()
            }),
            failed: ("GCP project", "FAIL", "ask for access to determined-ai"),
            skipped: &[],
        },
        Case {
            what: "a pinned image not in the project",
            setup: Box::new(|h, s| {
                h.write(
                    "tools/slurm/terraform/images.conf",
                    SEED.replace(PBS_PINNED, "det-environments-pbs-ci-1"),
                );
                s.folder_url()
            }),
            failed: (
                "pinned images",
                "FAIL",
                "cargo xtask slurm-image build --wm pbs",
            ),
            skipped: &[],
        },
        Case {
            what: "Artifactory out of reach",
            setup: Box::new(move |_, _| closed_port.clone()),
            failed: ("artifactory", "FAIL", "connect to the company VPN"),
            skipped: &[],
        },
        Case {
            what: "Artifactory refusing without credentials",
            setup: Box::new(|_, s| {
                s.set_faults(Faults {
                    required_auth: Some("Bearer t0k".into()),
                    ..Faults::default()
                });
                s.folder_url()
            }),
            failed: ("artifactory", "FAIL", "ARTIFACTORY_TOKEN"),
            skipped: &[],
        },
        Case {
            what: "git that does not run",
            setup: Box::new(|h, s| {
                h.stand_in("git", "#!/bin/sh\necho 'git: broken' >&2\nexit 1\n");
                s.folder_url()
            }),
            failed: ("git", "FAIL", "install git"),
            skipped: &[],
        },
    ];
    for case in cases {
        let (host, server) = healthy().unwrap();
        let url = (case.setup)(&host, &server);
        // A stand-in gcloud is a case of the gcloud edge: the built binary runs it.
        let run = if host.path("bin/gcloud").exists() {
            Run::of(doctor_command(&host, &url))
        } else {
            Run::in_process(doctor_command(&host, &url))
        };
        assert_ne!(
            run.code,
            Some(0),
            "{}: doctor passed\n{}",
            case.what,
            run.stdout
        );
        let (check, _, _) = case.failed;
        assert!(
            run.stderr
                .contains(&format!("1 required check(s) failed: {check};")),
            "{}: {}",
            case.what,
            run.stderr
        );
        assert_only(&run, &[case.failed], case.skipped);
    }
}

#[test]
fn artifactory_out_of_reach_only_warns_when_build_holds_a_launcher() {
    let Some((host, _server)) = healthy() else {
        return;
    };
    host.write(&format!("tools/slurm/packer/build/{LAUNCHER}"), b"launcher");
    let run = Run::in_process(doctor_command(
        &host,
        "http://127.0.0.1:9/artifactory/launchers/hpc/",
    ))
    .ok();
    assert_only(
        &run,
        &[(
            "artifactory",
            "warn",
            "builds use the launcher in build/ meanwhile",
        )],
        &[],
    );
}

#[test]
fn a_dirty_checkout_is_a_warning_and_doctor_does_not_call_it_ready_to_release() {
    let Some((host, server)) = healthy() else {
        return;
    };
    host.write("tools/slurm/packer/static/notes.txt", "tried by hand\n");
    let run = Run::in_process(doctor_command(&host, &server.folder_url())).ok();
    assert!(
        run.stdout.contains(
            "\nwarn  checkout: uncommitted changes: tools/slurm/packer/static/notes.txt (untracked: packer reads it)"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.ends_with(
            "ready to build; not to release until checkout is fixed (their lines say how)\n"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn a_broken_playbook_fails_doctor_as_it_stops_builds_and_releases() {
    let Some((host, server)) = healthy() else {
        return;
    };
    if require_tool("ansible-playbook").is_none() {
        return;
    }
    host.real_ansible_playbook();
    host.write(
        "tools/slurm/packer/ansible-playbook.yml",
        "- hosts: all\n  tasks: [\n",
    );
    let run = Run::in_process(doctor_command(&host, &server.folder_url()));
    assert_ne!(run.code, Some(0), "{}", run.stdout);
    assert!(run.stdout.contains("\nFAIL  playbook: "), "{}", run.stdout);
    assert!(run.stderr.contains("playbook"), "{}", run.stderr);
}
