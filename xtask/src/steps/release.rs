//! A release's steps: the branch it commits on, the builds side by side, the commit with its
//! saved message, the log tail of a failed build and the prune plan it ends with.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{bail, Context};
use xshell::Shell;

use crate::edges::compute;
use crate::edges::git::{self, Checkout};
use crate::edges::packer::{OnError, Output};
use crate::host::{write_state_file, HostTree};
use crate::model::config::Config;
use crate::model::images_conf::ImagesConf;
use crate::model::launcher_choice::Launcher;
use crate::model::launcher_version::LauncherPackage;
use crate::model::release::{self, Failure};
use crate::model::release_plan::Target;
use crate::model::{list_or_none, prune_plan, WorkloadManager};
use crate::steps::build::{build_one, Inputs, Pinned, Plan};
use crate::steps::build_plan::Listing;
use crate::steps::survey::{now, Survey};
use crate::steps::verify::{self, Gate};
use crate::term::{exit, signal_name, InterruptGuard, Interrupted};

/// The branch to commit on: for `--redo` the release branch checked out, else a new one of a
/// name no branch has. Uncommitted changes are refused before, by
/// `steps::uncommitted::refuse_uncommitted`.
pub fn target(
    sh: &Shell,
    host: &HostTree,
    checkout: &Checkout,
    redo: bool,
    branch: Option<&str>,
) -> anyhow::Result<Target> {
    if redo {
        let Some(branch) = &checkout.branch else {
            bail!(
                "HEAD is detached: --redo finishes a release on its branch; check that branch out first \
                 (`git checkout NAME`)"
            );
        };
        // A redo commits where it stands: on main that would be a release without a review.
        if !release::has_release_branch_name(branch)
            && !git::is_marked_release_branch(sh, &host.root, branch)
        {
            bail!(
                "--redo finishes a release on the branch the release made, and {branch} is not one (neither \
                 named slurm-images-<date> nor made by `release` here): check out the release branch \
                 (`git checkout slurm-images-<date>`), or start a new release from here with \
                 `cargo xtask slurm-image release`"
            );
        }
        return Ok(Target::Current(branch.clone()));
    }
    let name = branch
        .map(str::to_string)
        .unwrap_or_else(|| release::default_branch(now()));
    if !git::is_valid_branch_name(sh, &name) {
        bail!("--branch {name:?} is not a name git accepts for a branch: choose another");
    }
    let existing = git::branches_named(sh, &host.root, &name)?;
    if !existing.is_empty() {
        bail!(
            "the branch {name} already exists ({}): a release makes a new branch; name another with \
             --branch NAME, delete it (`git branch -D {name}`), or, to finish a release made on it, check it \
             out and run `cargo xtask slurm-image release --redo slurm,pbs`",
            list_or_none(&existing)
        );
    }
    Ok(Target::New {
        name,
        from: checkout.branch.clone(),
    })
}

/// What each build needs to look for an image it can reuse instead of building.
pub struct Reuse<'a> {
    pub project: &'a str,
    /// `--force`: build even where one exists.
    pub force: bool,
    /// Each new image is verified before its pin, side by side like the builds.
    pub gate: &'a Gate,
}

/// Each workload manager's build plan, from the source image its release plan resolved and
/// the launcher package now in build/ (the fingerprint covers the package's bytes).
pub fn prepare_builds(
    host: &HostTree,
    inputs: &Inputs,
    sources: &[(WorkloadManager, String)],
    package: &LauncherPackage,
    on_error: Option<OnError>,
) -> anyhow::Result<Vec<Plan>> {
    let launcher = Launcher::Known(package.clone());
    sources
        .iter()
        .map(|(wm, source)| {
            Plan::new(host, inputs, *wm, &launcher, Some(source), false)
                .map(|plan| plan.with_on_error(on_error))
        })
        .collect()
}

/// Runs the builds, side by side (one thread and one shell each) or one after the other, each
/// with its output behind `[wm] `. A build not yet started when a signal arrives is not started.
/// Side by side, both builds decide reuse from `listed`, the one listing of the project the
/// release made while holding both build locks; one after the other, the second build (an hour
/// later) lists afresh. A listing that failed is left to each build, which says so as its own.
pub fn run_builds(
    sh: &Shell,
    host: &HostTree,
    plans: &[Plan],
    reuse: &Reuse<'_>,
    listed: Option<Listing>,
    side_by_side: bool,
    guard: &InterruptGuard,
) -> Vec<anyhow::Result<Pinned>> {
    let shared = listed.and_then(Result::ok).filter(|_| side_by_side);
    let shared = &shared;
    let run = |sh: Shell, plan: &Plan| -> anyhow::Result<Pinned> {
        if let Some(signal) = guard.received() {
            bail!("not started: {} arrived first", signal_name(signal));
        }
        let prefix = format!("[{}] ", plan.wm);
        // Each build decides on its own, with its own shell.
        let gcloud = compute::connect(&sh, reuse.project)?;
        build_one(
            &sh,
            host,
            plan,
            gcloud.as_ref(),
            shared.clone().map(Ok),
            reuse.force,
            reuse.gate,
            Output::Prefixed(&prefix),
        )
    };
    if !side_by_side {
        return plans.iter().map(|plan| run(sh.clone(), plan)).collect();
    }
    let run = &run;
    std::thread::scope(|scope| {
        let builds: Vec<_> = plans
            .iter()
            .map(|plan| {
                let sh = sh.clone();
                crate::session::spawn_scoped(scope, move || run(sh, plan))
            })
            .collect();
        builds
            .into_iter()
            .map(|build| {
                build.join().unwrap_or_else(|_| {
                    Err(anyhow::anyhow!("the build stopped on an internal error"))
                })
            })
            .collect()
    })
}

/// Reports each build's end; an error, committing nothing, unless every build was pinned
/// and no signal came. The error names the pins already recorded and the command that
/// finishes the release (`redo`, for the workload managers to build again).
pub fn settle(
    host: &HostTree,
    target: &Target,
    plans: &[Plan],
    results: &[anyhow::Result<Pinned>],
    guard: &InterruptGuard,
    redo: impl Fn(&[WorkloadManager]) -> String,
) -> anyhow::Result<()> {
    errln!("results:");
    let mut pinned = Vec::new();
    let mut missing = Vec::new();
    for (plan, result) in plans.iter().zip(results) {
        match result {
            Ok(built) => {
                let how = if built.reused {
                    " (reused: made from the same inputs; --force builds anyway)"
                } else {
                    ""
                };
                errln!("  {}: pinned {}{how}", plan.wm, built.image);
                pinned.push(format!("{} {}", plan.wm, built.image));
            }
            Err(err) => {
                errln!("  {}: {}", plan.wm, without_verify_steps(err));
                missing.push(plan.wm);
            }
        }
    }
    let images_conf = host.show(&host.images_conf);
    let recorded = if pinned.is_empty() {
        "no pin was recorded".to_string()
    } else {
        format!(
            "already recorded in {images_conf} (uncommitted): {}",
            pinned.join(", ")
        )
    };
    let redo = redo(&missing);
    if let Some(signal) = guard.received() {
        let finish = if missing.is_empty() {
            format!("every image is built, so to commit them: git commit -- {images_conf}")
        } else {
            format!("to finish the release on {}: {redo}", target.name())
        };
        return Err(Interrupted::error(
            signal,
            format!(
                "{} stopped the release: packer and the verifications were left to delete their VMs and nothing \
                 was committed; {recorded}; {finish} (`cargo xtask slurm-image orphans` lists VMs left behind)",
                signal_name(signal)
            ),
        ));
    }
    if missing.is_empty() {
        return Ok(());
    }
    // packer's log explains a failed build, not an image that failed its checks.
    let mut failed = Vec::new();
    for (plan, result) in plans.iter().zip(results) {
        if let Err(err) = result {
            if verify::failed(err).is_some() {
                failed.push((plan.wm, Failure::Verification));
            } else {
                show_log_tail(host, plan);
                failed.push((plan.wm, Failure::Build));
            }
        }
    }
    let what = release::what_failed(&failed);
    // A failed build outranks a failed verification: the fix of packer's failure comes first.
    let kind = if failed.iter().any(|(_, how)| *how == Failure::Build) {
        exit::Failure::Build
    } else {
        exit::Failure::Verification
    };
    Err(kind.error(format!(
        "{what} (see above): nothing was committed; {recorded}; to finish the release on {}: {redo} ({})",
        target.name(),
        release::redo_does(&failed)
    )))
}

/// The error of a build, without the `verify IMAGE --pin` steps a failed verification ends
/// with: in a release, `release --redo` verifies the image again and commits it, so it is the
/// one next step the release names.
fn without_verify_steps(err: &anyhow::Error) -> String {
    match verify::failed(err) {
        Some(failed) => failed.report.clone(),
        None => format!("{err:#}"),
    }
}

/// Commits images.conf alone on the release branch with `message` (every pin and its
/// launcher); the commit, abbreviated. The message is saved first, so that a commit that fails
/// (a hook, a signing key) leaves the exact command that uses it.
pub fn commit_pins(
    sh: &Shell,
    host: &HostTree,
    target: &Target,
    message: &str,
) -> anyhow::Result<String> {
    let images_conf = host.show(&host.images_conf);
    let message_file = host.state_dir_ready()?.join("release-commit-message.txt");
    write_state_file(&message_file, message.as_bytes())?;
    let by_hand = format!(
        "git commit -F {} -- {images_conf}",
        host.show(&message_file)
    );
    // An hour is long enough to switch branches in this checkout; the pins must land on the
    // release's branch or nowhere.
    let current = git::current_branch(sh, &host.root);
    if current.as_deref() != Some(target.name()) {
        bail!(
            "the images are built and pinned in {images_conf}, but the checkout is no longer on {} (now {}): \
             nothing was committed; to commit them: git checkout {} && {by_hand}",
            target.name(),
            current.as_deref().unwrap_or("a detached HEAD"),
            target.name()
        );
    }
    let commit =
        git::commit_file(sh, &host.root, Path::new(&images_conf), message).with_context(|| {
            format!(
                "the images are built and pinned in {images_conf}, uncommitted; the commit message is saved, \
                 so once git can commit: {by_hand}"
            )
        })?;
    let _ = std::fs::remove_file(&message_file);
    errln!(
        "commit: {commit} on {}: {}",
        target.name(),
        message.lines().next().unwrap_or_default()
    );
    Ok(commit)
}

/// Every pin with the launcher its image was built with: this run's package for the images it
/// built or reused (a reused image was made from the same package), and for an image a redo
/// keeps, what the image itself says, read in one listing.
pub fn with_launchers(
    sh: &Shell,
    host: &HostTree,
    project: &str,
    pins: &[(WorkloadManager, String)],
    this_run: &[WorkloadManager],
    package: &LauncherPackage,
) -> Vec<release::Pin> {
    // What the commit changes: the pins against images.conf at HEAD.
    let at_head = git::file_at_head(sh, &host.root, &host.show(&host.images_conf))
        .and_then(|text| ImagesConf::parse(&text).ok());
    let kept = pins.iter().any(|(wm, _)| !this_run.contains(wm));
    let listed = if kept {
        match compute::connect(sh, project).and_then(|gcloud| gcloud.list_images()) {
            Ok(images) => images,
            Err(err) => {
                errln!("warning: the kept image's launcher is not known: listing the images failed ({err:#})");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    pins.iter()
        .map(|(wm, image)| {
            let launcher = if this_run.contains(wm) {
                Some(package.version.to_string())
            } else {
                listed
                    .iter()
                    .find(|listed| &listed.name == image)
                    .and_then(|listed| {
                        prune_plan::launcher_of(
                            &listed.labels,
                            listed.description.as_deref().unwrap_or_default(),
                        )
                    })
            };
            release::Pin {
                wm: *wm,
                image: image.clone(),
                launcher,
                changed: at_head
                    .as_ref()
                    .is_none_or(|conf| conf.pinned(*wm) != Some(image.as_str())),
            }
        })
        .collect()
}

/// Every image was reused and is already pinned at HEAD: no commit, and no branch left behind
/// that holds nothing; the checkout goes back to where the release started.
pub fn nothing_to_release(
    sh: &Shell,
    host: &HostTree,
    target: &Target,
    head: &str,
) -> anyhow::Result<()> {
    let images_conf = host.show(&host.images_conf);
    let why = format!(
        "nothing to release: every image is reused and {images_conf} already pins it at HEAD, so nothing was committed"
    );
    match target {
        Target::New { name, from } => {
            let back_to = from.as_deref().unwrap_or(head);
            git::leave_and_delete_branch(sh, &host.root, name, back_to)?;
            outln!("{why}; the branch {name} is deleted and the checkout is back on {back_to}");
        }
        Target::Current(name) => outln!("{why} on {name}"),
    }
    Ok(())
}

/// The end of a failed build's packer log, where its error usually is.
pub fn show_log_tail(host: &HostTree, plan: &Plan) {
    const LINES: usize = 15;
    let shown = host.show(&plan.log_file);
    let tail = (|| -> std::io::Result<String> {
        let mut file = std::fs::File::open(&plan.log_file)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    })();
    match tail {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let last = &lines[lines.len().saturating_sub(LINES)..];
            errln!("{}: packer's log is {shown}; its last lines:", plan.wm);
            for line in last {
                errln!("  {line}");
            }
        }
        Err(err) => errln!("{}: packer's log {shown} cannot be read ({err})", plan.wm),
    }
}

/// What prune would delete, as `images` computes it, now that the new images are pinned, in
/// one line: the table of images is `images`'s to show. Nothing is deleted.
pub fn show_prune_plan(sh: &Shell, host: &HostTree, config: &Config) {
    match Survey::take(sh, host, config, config.prune.keep) {
        Ok(survey) => {
            let doomed = prune_plan::deletions(&survey.plan);
            if doomed.is_empty() {
                outln!("prune would delete nothing now");
            } else {
                outln!(
                    "prune would delete {} image(s) now: {}",
                    doomed.len(),
                    doomed.join(", ")
                );
            }
        }
        Err(err) => outln!(
            "the prune plan is not shown: listing the images failed ({err:#}); `cargo xtask slurm-image images` \
             shows it"
        ),
    }
}
