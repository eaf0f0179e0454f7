//! One plan: a dry run and then the run on the same state decide the same launcher, source
//! image, variables, reuse or build, and images.conf change.

use crate::support::commit_host_tree;
use crate::support::{git, HostCopy, Run, GIT_IDENTITY as IDENTITY, STAND_IN_PACKER};

const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";
const PINNED: &str = "det-environments-slurm-ci-1717047568";
const SEED: &str =
    "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n";
/// The first image the stand-in packer builds for slurm.
const FIRST: &str = "det-environments-slurm-ci-1800000000";
const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";

/// A host copy with a launcher in build/, pinning an older slurm image.
fn host() -> Option<HostCopy> {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(IMAGES_CONF, SEED);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    host.api().add_image(
        PINNED,
        1_717_047_568,
        "READY",
        &[],
        "HPC slurm testing VM hpe-hpc-launcher_3.3.0-0_amd64.deb",
    );
    Some(host)
}

/// The line of `out` that starts with `start`, without it.
fn after<'a>(out: &'a str, start: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in\n{out}"))
}

/// The variables file a dry run prints between its `would contain:` and `and run` lines.
fn shown_variables(stdout: &str) -> &str {
    let start = stdout
        .find("would contain:\n")
        .unwrap_or_else(|| panic!("no variables in\n{stdout}"));
    let rest = &stdout[start + "would contain:\n".len()..];
    &rest[..rest.find("\n# and run").unwrap()]
}

fn builds(host: &HostCopy) -> usize {
    host.packer_calls()
        .iter()
        .filter(|c| c.contains("| build"))
        .count()
}

/// What the run said, on either stream.
fn said(run: &Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

#[test]
fn a_build_does_what_its_dry_run_planned_whether_it_builds_or_reuses() {
    let Some(host) = host() else { return };

    // Building: nothing made from these inputs exists yet.
    let dry = host.run(&["build", "--offline", "--dry-run"]).ok();
    assert_eq!(host.read(IMAGES_CONF), SEED, "a dry run changes nothing");
    assert_eq!(
        after(&dry.stdout, "launcher: "),
        format!("{LAUNCHER} (in tools/slurm/packer/build)")
    );
    let source = after(&dry.stdout, "source image: ").to_string();
    let verdict = after(&dry.stdout, "# building: ").to_string();
    assert_eq!(
        after(&dry.stdout, "# then in tools/slurm/terraform/images.conf: "),
        format!(
            "`slurm: {PINNED}` -> `slurm: det-environments-slurm-ci-<timestamp>, the image packer builds`"
        )
    );
    let variables = shown_variables(&dry.stdout).to_string();

    let run = host.run(&["build", "--offline"]).ok();
    let said = said(&run);
    assert!(said.contains(LAUNCHER), "{said}");
    assert_eq!(after(&said, "source image: "), source);
    assert_eq!(after(&said, "building: "), verdict);
    assert_eq!(
        host.read("target/slurm-image/slurm.pkrvars.hcl").trim_end(),
        variables.trim_end(),
        "the run passes packer the variables its dry run showed"
    );
    assert_eq!(builds(&host), 1);
    assert_eq!(
        host.read(IMAGES_CONF),
        SEED.replace(PINNED, FIRST),
        "the pin the dry run promised, with packer's timestamp"
    );

    // Reusing: back to the old pin, the image just built has the same inputs.
    host.write(IMAGES_CONF, SEED);
    let dry = host.run(&["build", "--offline", "--dry-run"]).ok();
    let verdict = after(&dry.stdout, "# reusing ").to_string();
    assert!(verdict.starts_with(&format!("{FIRST}: ")), "{verdict}");
    assert_eq!(
        after(&dry.stdout, "# then in tools/slurm/terraform/images.conf: "),
        format!("`slurm: {PINNED}` -> `slurm: {FIRST}`")
    );
    assert_eq!(after(&dry.stdout, "source image: "), source);
    let variables = shown_variables(&dry.stdout).to_string();

    let run = host.run(&["build", "--offline"]).ok();
    let said = self::said(&run);
    assert_eq!(after(&said, "reusing "), verdict);
    assert_eq!(after(&said, "source image: "), source);
    assert_eq!(builds(&host), 1, "a reused image needs no packer");
    assert_eq!(host.read(IMAGES_CONF), SEED.replace(PINNED, FIRST));
    // Nothing was written for packer this time: the plan's variables are those of the image
    // reused, which its first run wrote.
    assert_eq!(
        host.read("target/slurm-image/slurm.pkrvars.hcl").trim_end(),
        variables.trim_end()
    );
}

fn release(host: &HostCopy, args: &[&str]) -> Run {
    let mut all = vec!["release", "--offline"];
    all.extend_from_slice(args);
    let mut cmd = host.xtask(&all);
    cmd.envs(IDENTITY);
    Run::in_process(cmd).ok()
}

/// The commit message a release dry run shows.
fn planned_message(stdout: &str) -> &str {
    let start = stdout
        .find("alone with the message:\n")
        .unwrap_or_else(|| panic!("no commit message in\n{stdout}"));
    let rest = &stdout[start + "alone with the message:\n".len()..];
    rest[..rest.find("\n# and end with").unwrap()].trim_end()
}

/// Each workload manager's lines starting with `start` after `[wm] ` (and `# ` in a dry run).
fn per_wm(out: &str, start: &str) -> Vec<String> {
    let mut found: Vec<String> = out
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("# ").unwrap_or(l);
            let (wm, rest) = l.strip_prefix('[')?.split_once("] ")?;
            Some(format!("{wm} {}", rest.strip_prefix(start)?))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn a_release_does_what_its_dry_run_planned_whether_it_builds_or_reuses() {
    let Some(host) = host() else { return };
    commit_host_tree(&host);

    // Building both.
    let dry = release(&host, &["--dry-run", "--branch", "slurm-images-one"]);
    assert!(!dry.stdout.contains("would stop here"), "{}", dry.stdout);
    assert!(dry
        .stdout
        .contains("# branch: a new slurm-images-one from main"));
    let building = per_wm(&dry.stdout, "building: ");
    assert_eq!(building.len(), 2, "{}", dry.stdout);
    let message = planned_message(&dry.stdout).to_string();
    assert!(
        message.starts_with("Update the slurm and pbs test cluster images (launcher 3.3.1-2)"),
        "{message}"
    );
    let launcher = after(&dry.stdout, "# launcher: ");
    let launcher = &launcher[..launcher.find(" (").unwrap_or(launcher.len())];
    let run = release(&host, &["--yes", "--branch", "slurm-images-one"]);
    assert_eq!(per_wm(&said(&run), "building: "), building);
    assert!(
        run.stderr.contains(&format!("with launcher {launcher}")),
        "the run starts with the launcher the dry run planned, {launcher}:\n{}",
        run.stderr
    );
    assert_eq!(
        git(&host, &["branch", "--show-current"]),
        "slurm-images-one"
    );
    let built = host.read(IMAGES_CONF);
    assert!(!built.contains("1717"), "both pins are new:\n{built}");
    // The message the dry run showed, with the images it could only name filled in.
    let mut filled = message.clone();
    for line in built.lines() {
        let (wm, image) = line.split_once(": ").unwrap();
        filled = filled.replace(&format!("<the new {wm} image>"), image);
    }
    assert!(!filled.contains('<'), "{filled}");
    let committed = git(&host, &["log", "-1", "--format=%B"]);
    assert!(
        committed.starts_with(&filled),
        "the commit message the dry run showed, filled in:\n{filled}\nthe one committed:\n{committed}"
    );

    // Reusing both, from main again: the dry run promises the images just built, not new ones.
    git(&host, &["checkout", "-q", "main"]);
    let dry = release(&host, &["--dry-run", "--branch", "slurm-images-two"]);
    let reusing = per_wm(&dry.stdout, "reusing ");
    assert_eq!(reusing.len(), 2, "{}", dry.stdout);
    assert!(!dry.stdout.contains("packer builds>"), "{}", dry.stdout);
    for line in built.lines() {
        let (wm, image) = line.split_once(": ").unwrap();
        assert!(
            dry.stdout.contains(&format!(
                "+ {wm}: {image} (reused: made from the same inputs)"
            )),
            "{}",
            dry.stdout
        );
    }
    let message = planned_message(&dry.stdout).to_string();
    let run = release(&host, &["--yes", "--branch", "slurm-images-two"]);
    assert_eq!(per_wm(&said(&run), "reusing "), reusing);
    assert_eq!(
        git(&host, &["branch", "--show-current"]),
        "slurm-images-two"
    );
    assert_eq!(host.read(IMAGES_CONF), built);
    let committed = git(&host, &["log", "-1", "--format=%B"]);
    assert!(
        committed.starts_with(&message),
        "the commit message the dry run showed:\n{message}\nthe one committed:\n{committed}"
    );
    assert_eq!(builds(&host), 2, "reused images need no packer");
}
