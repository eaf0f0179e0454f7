//! The tool on a template in the real host repository's form: the old script's seven variables,
//! the manifest at build/manifest.json, build/ uploaded whole, plugins but no required_version.

use crate::support::{HostCopy, STAND_IN_PACKER};

const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";
const SEED: &str =
    "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n";

fn real_form_with_launcher() -> HostCopy {
    let host = HostCopy::real_form();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    host
}

/// The `name = value` lines of a variables file, comments left out.
fn variable_lines(vars: &str) -> Vec<&str> {
    vars.lines().filter(|l| !l.starts_with('#')).collect()
}

/// Also what was `missing_plugins_are_installed_with_packer_init_and_said_so`: its two builds
/// are these two.
#[test]
fn slurm_and_pbs_builds_pin_their_images_with_the_old_scripts_variables() {
    let host = real_form_with_launcher();
    for (wm, project, family) in [
        (
            "slurm",
            "schedmd-slurm-public",
            "slurm-gcp-6-3-ubuntu-2004-lts",
        ),
        ("pbs", "ubuntu-os-cloud", "ubuntu-2004-lts"),
    ] {
        // No plugin is installed until `packer init` runs: the first build installs them and
        // says so, the second finds them installed and does not run it again.
        let run = host
            .run_env(
                &["build", "--offline", "--wm", wm],
                &[("FAKE_PACKER_PLUGINS", "none")],
            )
            .ok();
        if wm == "slurm" {
            assert!(
                run.stderr.contains("github.com/hashicorp/ansible")
                    && run.stderr.contains("`packer init .`"),
                "{}",
                run.stderr
            );
            let calls = host.packer_calls();
            let init = calls.iter().position(|c| c.ends_with("| init .")).unwrap();
            let build = calls.iter().position(|c| c.contains("| build")).unwrap();
            assert!(init < build, "{calls:?}");
        }
        let vars = host.read("last.pkrvars.hcl");
        assert_eq!(
            variable_lines(&vars),
            [
                "ssh_username = \"packer2\"".to_string(),
                format!("workload_manager = \"{wm}\""),
                format!("image_project_id = \"{project}\""),
                format!("image_family = \"{family}\""),
                format!("launcher_deb_name = \"{LAUNCHER}\""),
                "cpu_image_name = \"determinedai/pytorch-tensorflow-cpu-dev:e960eae\"".into(),
                "cuda_image_name = \"determinedai/pytorch-ngc-dev:e960eae\"".into(),
            ],
            "{vars}"
        );
        // Nothing is missing: no optional declaration is needed.
        assert!(!run.stderr.contains("note:"), "{}", run.stderr);
    }
    assert_eq!(
        host.packer_calls()
            .iter()
            .filter(|c| c.ends_with("| init ."))
            .count(),
        1,
        "the plugins the slurm build installed are there for the pbs build"
    );
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1800000000\n"
    );
    // Without `source_image` and `image_labels` each image is still labelled, after packer.
    for wm in ["slurm", "pbs"] {
        let image = host
            .api()
            .image(&format!("det-environments-{wm}-ci-1800000000"))
            .unwrap();
        assert_eq!(image["labels"]["workload-manager"], wm, "{image}");
    }
    // The template uploads build/ whole: at upload time it held the launcher and nothing of
    // the tool's, and the manifest is gone once read.
    assert_eq!(
        host.read("packer-uploads.log"),
        format!("{LAUNCHER} \n{LAUNCHER} \n")
    );
    let left: Vec<String> = std::fs::read_dir(host.build_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, [LAUNCHER]);
}

#[test]
fn a_dry_run_and_init_work_on_the_real_form() {
    let host = real_form_with_launcher();
    let run = host
        .run(&["build", "--offline", "--dry-run", "--wm", "pbs"])
        .ok();
    assert!(
        run.stdout
            .contains("image_project_id = \"ubuntu-os-cloud\""),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("manifest_path"), "{}", run.stdout);
    host.run(&["init"]).ok();
    assert!(host.packer_calls().iter().any(|c| c.ends_with("| init .")));
}

#[test]
fn a_template_lacking_a_contract_variable_stops_before_packer() {
    let host = real_form_with_launcher();
    let template = host
        .read("tools/slurm/packer/main.pkr.hcl")
        .replace("  cpu_image_name    = \"\"\n", "");
    host.write("tools/slurm/packer/main.pkr.hcl", template);
    for args in [&["build", "--offline"][..], &["check"]] {
        host.run(args).fails_with(&[
            "the template does not declare cpu_image_name",
            "declare it in its `variables {}` block",
        ]);
    }
    assert!(!host.packer_calls().iter().any(|c| c.contains("| build")));
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
}

#[test]
fn a_template_in_another_project_than_the_config_is_refused() {
    let host = real_form_with_launcher();
    let template = host
        .read("tools/slurm/packer/main.pkr.hcl")
        .replace("\"determined-ai\"", "\"someone-else\"");
    host.write("tools/slurm/packer/main.pkr.hcl", template);
    host.run(&["build", "--offline"]).fails_with(&[
        "the template builds in project someone-else",
        "gcp.project = \"determined-ai\"",
    ]);
    assert!(!host.packer_calls().iter().any(|c| c.contains("| build")));
}

#[test]
fn packer_17_has_no_plugin_listing_so_init_runs_every_build() {
    let host = real_form_with_launcher();
    host.run_env(&["build", "--offline"], &[("FAKE_PACKER", "1.7.4")])
        .ok();
    let calls = host.packer_calls();
    assert!(calls.iter().any(|c| c.ends_with("| init .")), "{calls:?}");
    assert!(!calls.iter().any(|c| c.contains("| plugins")), "{calls:?}");
}

#[test]
fn without_gcloud_the_build_stops_before_packer() {
    let host = real_form_with_launcher();
    // A PATH with the stand-in packer and what its script uses, but no gcloud.
    let tools = host.path("tools-bin");
    std::fs::create_dir_all(&tools).unwrap();
    for tool in ["bash", "dirname"] {
        let found = crate::support::require_tool(tool).expect("coreutils are installed");
        std::os::unix::fs::symlink(found, tools.join(tool)).unwrap();
    }
    let path = format!("{}:{}", host.path("bin").display(), tools.display());
    let mut cmd = host.xtask(&["build", "--offline"]);
    cmd.env("PATH", path);
    crate::support::Run::of(cmd)
        .fails_with(&["gcloud is not on PATH", "install the Google Cloud CLI"]);
    assert!(!host.packer_calls().iter().any(|c| c.contains("| build")));
}

#[test]
fn a_dry_run_lists_what_it_could_not_find_out_and_exits_as_a_stop() {
    let host = HostCopy::real_form();
    host.stand_in("packer", STAND_IN_PACKER);
    let run = host
        .run_env(
            &["build", "--offline", "--dry-run"],
            &[("FAKE_PACKER", "1.6.6")],
        )
        .stops();
    for wanted in [
        "# could not find out",
        "packer 1.6.6 is installed but the template needs packer >= 1.7.0",
        "launcher: no launcher package in tools/slurm/packer/build",
        "# input fingerprint: unknown until the launcher is known",
    ] {
        assert!(run.stdout.contains(wanted), "{wanted}\n{}", run.stdout);
    }
    assert!(!host.build_dir().exists());
    assert!(!host.state_dir().exists());
}
