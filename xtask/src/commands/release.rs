//! `release`: the pre-release checklist as one command: both images built side by side on a new
//! branch, their pins committed, and what is left for a person spelled out.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use xshell::Shell;

use crate::commands::{HelpFooter, WorkloadManagerArg, ARTIFACTORY_ENVIRONMENT};
use crate::edges::artifactory::Artifactory;
use crate::edges::gcloud::Gcloud;
use crate::edges::git::{self, Checkout};
use crate::edges::packer::{self, Output};
use crate::host::{write_atomically, HostTree};
use crate::model::config::Config;
use crate::model::launcher_choice::{Decision, Launcher, Purpose, Wanted};
use crate::model::launcher_version::LauncherPackage;
use crate::model::release::{self, LauncherSource, Released};
use crate::model::verification;
use crate::model::{list_or_none, prune_plan, WorkloadManager};
use crate::steps::build::{build_one, ensure_plugins, source_for, Inputs, Pinned, Plan};
use crate::steps::build_lock;
use crate::steps::consumers::TaskImages;
use crate::steps::host_files::read_images_conf;
use crate::steps::launcher;
use crate::steps::playbook::check_playbook_before_vm;
use crate::steps::survey::{now, Survey};
use crate::steps::verify::{self, Gate};
use crate::term::{approved, is_interactive, signal_name, InterruptGuard, Interrupted};

/// Build the SLURM and PBS images side by side on a new branch and commit both pins.
///
/// Refuses before any work when tracked files have changes or the branch exists. Uses the
/// newest launcher release (fetched into build/ when missing), creates the branch from HEAD,
/// builds both images at once, pins each in images.conf, commits images.conf alone when both
/// succeeded, and ends with what is left: push, pull request, prune.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("release", "a branch, both images built at once with the newest launcher, committed"),
        ("release --dry-run", "the whole plan, from the launcher to the commit; changes nothing"),
        ("release --redo pbs", "finish a release whose pbs build failed: build only pbs again, then commit"),
        ("release --offline", "release with the launcher package in build/, without Artifactory"),
    ],
    environment: ARTIFACTORY_ENVIRONMENT,
    config: &["[gcp]", "[image]", "[slurm]", "[pbs]", "[artifactory]", "[prune] (for the prune plan it ends with)"],
}.render())]
pub struct Release {
    /// Start without asking (a release runs two packer VMs for about an hour, then commits).
    #[arg(long)]
    pub yes: bool,
    /// The branch to create from HEAD [default: slurm-images-<YYYY-MM-DD>, today in UTC].
    #[arg(long, value_name = "NAME", conflicts_with = "redo")]
    pub branch: Option<String>,
    /// Build one image after the other instead of side by side.
    #[arg(long)]
    pub sequential: bool,
    /// Build even where an image made from the same inputs exists (it would be reused).
    #[arg(long)]
    pub force: bool,
    /// Show the whole plan (launcher, branch, packer commands and variables, images.conf
    /// lines); write, fetch, build and commit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Never contact Artifactory: release with the launcher package in build/ (the release
    /// then does not carry the newest launcher).
    #[arg(long, conflicts_with = "launcher")]
    pub offline: bool,
    /// Release with this launcher package (copied into build/) instead of the newest release.
    #[arg(long, value_name = "PATH")]
    pub launcher: Option<PathBuf>,
    /// Finish a release that stopped part-way, on its branch: build only these workload
    /// managers again (`pbs`, or `slurm,pbs`), keep the other's pin, and commit.
    #[arg(long, value_name = "WM", value_enum, value_delimiter = ',')]
    pub redo: Vec<WorkloadManagerArg>,
    /// Pin the new images without booting them to run the checks script (the pins are
    /// unverified).
    #[arg(long)]
    pub no_verify: bool,
}

/// Where the release commits.
enum Target {
    /// A new branch, made from HEAD; `from` is the branch HEAD was on.
    New { name: String, from: Option<String> },
    /// `--redo`: the branch checked out now, which the release made earlier.
    Current(String),
}

impl Target {
    fn name(&self) -> &str {
        match self {
            Target::New { name, .. } | Target::Current(name) => name,
        }
    }

    fn from(&self) -> Option<&str> {
        match self {
            Target::New { from, .. } => from.as_deref(),
            Target::Current(_) => None,
        }
    }
}

impl Release {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let wms = self.workload_managers();
        if self.dry_run {
            return self.dry_run(sh, host, &wms);
        }
        // Everything that can refuse does so here, before a download, a VM or a branch.
        // Both build locks, whichever it builds: the commit takes images.conf whole.
        let _locks = build_lock::take(host, &WorkloadManager::ALL, "release")?;
        let checkout = git::checkout(sh, &host.root)?;
        if let Some(problem) = git::identity_problem(sh, &host.root) {
            bail!(
                "{problem}: a release ends in a commit made as you, so set it first: {}",
                git::IDENTITY_FIX
            );
        }
        let target = self.target(sh, host, &checkout)?;
        let inputs = Inputs::read(host)?;
        TaskImages::read(host, &inputs.config)
            .refuse_mismatches(host)
            .context(
                "nothing done: a release's images must cache the task images the clusters use",
            )?;
        let version = packer::check_version(sh, &inputs.template)?;
        // packer's IAP tunnel runs gcloud, and the prune plan at the end needs it.
        Gcloud::new(sh, &inputs.config.gcp.project)?;
        let decision = launcher::choose(host, &inputs.config, &self.wanted())?.decision;
        if let Decision::Refuse { why } = &decision {
            bail!("{why}");
        }
        let source = self.launcher_source();
        let side_by_side = self.side_by_side(&wms);

        self.introduce(host, &target, &wms, &decision, &source, side_by_side);
        if !approved(self.yes, "Start the release?")? {
            if !is_interactive() {
                bail!(
                    "nothing done: a release runs {} for about an hour and commits; rerun with --yes to start it \
                     (no terminal to ask on)",
                    if wms.len() > 1 { "two packer VMs" } else { "one packer VM" }
                );
            }
            outln!("nothing done");
            return Ok(());
        }

        let package = launcher::carry_out(host, decision, false)?;
        ensure_plugins(sh, host, &inputs.template, version)?;
        // Each workload manager's playbook check and source image, side by side: both wait on
        // other programs (ansible-playbook, gcloud), and a release should cost one build's time.
        let plans = std::thread::scope(|scope| {
            let prepared: Vec<_> = wms
                .iter()
                .map(|&wm| {
                    let (sh, inputs, package) = (sh.clone(), &inputs, &package);
                    scope.spawn(move || {
                        check_playbook_before_vm(&sh, host, &inputs.template, &[wm])?;
                        let source = source_for(&sh, inputs, wm)?;
                        let launcher = Launcher::Known(package.clone());
                        Plan::new(host, inputs, wm, &launcher, Some(&source), false)
                    })
                })
                .collect();
            prepared
                .into_iter()
                .map(|plan| {
                    plan.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("preparing a build failed")))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })?;

        // From here a signal is recorded rather than fatal: the builds' VMs get deleted, the
        // pins already made are reported, and nothing is committed.
        let guard = InterruptGuard::new()?;
        if let Target::New { name, from } = &target {
            git::create_branch(sh, &host.root, name)?;
            git::mark_release_branch(sh, &host.root, name)?;
            errln!(
                "branch: created {name} from {}",
                from.as_deref().unwrap_or(&checkout.head)
            );
        }
        let gate = Gate::read(host, &inputs.config, &inputs.template, self.no_verify)?;
        let results = run_builds(
            sh,
            host,
            &plans,
            &Reuse {
                project: &inputs.config.gcp.project,
                force: self.force,
                gate: &gate,
            },
            side_by_side,
            &guard,
        );
        self.settle(host, &target, &plans, &results, &guard, &source)?;

        let images_conf = host.show(&host.images_conf);
        if !git::differs_from_head(sh, &host.root, Path::new(&images_conf))? {
            drop(guard);
            return nothing_to_release(sh, host, &target, &checkout.head);
        }
        let conf = read_images_conf(host)?;
        let all_pins: Vec<(WorkloadManager, String)> = WorkloadManager::ALL
            .into_iter()
            .filter_map(|wm| conf.pinned(wm).map(|image| (wm, image.to_string())))
            .collect();
        let inside: Vec<String> = plans
            .iter()
            .zip(&results)
            .filter_map(|(plan, result)| {
                let diff = result.as_ref().ok()?.inside.as_ref()?;
                Some(format!("{}: {diff}", plan.wm))
            })
            .collect();
        let pins = with_launchers(sh, &inputs.config.gcp.project, &all_pins, &wms, &package);
        let commit = commit_pins(sh, host, &target, &pins, &package, &source, &inside)?;
        drop(guard);

        let origin = git::origin_url(sh, &host.root);
        let base = target
            .from()
            .filter(|from| origin.is_some() && git::origin_has(sh, &host.root, from));
        out!(
            "{}",
            release::checklist(&Released {
                branch: target.name(),
                from: target.from(),
                pins: &all_pins,
                launcher: &package,
                source: &source,
                commit: &commit,
                images_conf: &images_conf,
                origin: origin.as_deref(),
                base,
            })
        );
        for line in &inside {
            outln!("inside the images: {line}");
        }
        show_prune_plan(sh, host, &inputs.config);
        Ok(())
    }

    /// Reports each build's end; an error, committing nothing, unless every build was pinned
    /// and no signal came. The error names the pins already recorded and the command that
    /// finishes the release.
    fn settle(
        &self,
        host: &HostTree,
        target: &Target,
        plans: &[Plan],
        results: &[anyhow::Result<Pinned>],
        guard: &InterruptGuard,
        source: &LauncherSource,
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
                    errln!("  {}: {err:#}", plan.wm);
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
        let redo = release::redo_command(&missing, source, self.sequential, self.yes);
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
        let mut packer_failed = false;
        for (plan, result) in plans.iter().zip(results) {
            if let Err(err) = result {
                if !verify::is_failed(err) {
                    show_log_tail(host, plan);
                    packer_failed = true;
                }
            }
        }
        let plural = if missing.len() > 1 { "s" } else { "" };
        let what = if packer_failed {
            format!("the {} build{plural} failed", names(&missing))
        } else {
            format!("the {} image{plural} failed verification", names(&missing))
        };
        bail!(
            "{what} (see above): nothing was committed; {recorded}; to build only {} again on {} \
             and then commit: {redo}",
            names(&missing),
            target.name()
        )
    }

    /// The workload managers this run builds: both, or those of `--redo`.
    fn workload_managers(&self) -> Vec<WorkloadManager> {
        if self.redo.is_empty() {
            return WorkloadManager::ALL.to_vec();
        }
        let mut wms: Vec<WorkloadManager> = self.redo.iter().map(|&wm| wm.into()).collect();
        wms.sort();
        wms.dedup();
        wms
    }

    /// The branch to commit on, once the checkout is found fit: no changed tracked file (but
    /// the pins a part-done release left, for `--redo`), and no branch of the new name.
    fn target(&self, sh: &Shell, host: &HostTree, checkout: &Checkout) -> anyhow::Result<Target> {
        let images_conf = host.show(&host.images_conf);
        if !self.redo.is_empty() {
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
            let others: Vec<&String> = checkout
                .changed
                .iter()
                .filter(|path| **path != images_conf)
                .collect();
            if !others.is_empty() {
                bail!(
                    "tracked files have uncommitted changes: {}: --redo commits {images_conf} alone, so commit or \
                     stash the others first (`git stash`)",
                    list_or_none(&others)
                );
            }
            return Ok(Target::Current(branch.clone()));
        }
        if !checkout.changed.is_empty() {
            bail!(
                "tracked files have uncommitted changes: {}: a release starts from a clean checkout; commit or \
                 stash them first (`git stash`), then run the release again",
                list_or_none(&checkout.changed)
            );
        }
        let name = self
            .branch
            .clone()
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

    /// The launcher as the flags ask for it: the newest release unless `--offline` or
    /// `--launcher` says otherwise.
    fn wanted(&self) -> Wanted {
        Wanted {
            path: self.launcher.clone(),
            offline: self.offline,
            yes: self.yes,
            purpose: Purpose::Release,
        }
    }

    /// How the flags chose the launcher, for the commit message and the `--redo` command.
    fn launcher_source(&self) -> LauncherSource {
        match (&self.launcher, self.offline) {
            (Some(path), _) => {
                let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                LauncherSource::Given(absolute.display().to_string())
            }
            (None, true) => LauncherSource::Offline,
            (None, false) => LauncherSource::Newest,
        }
    }

    /// Whether the builds run side by side; when not, says why.
    fn side_by_side(&self, wms: &[WorkloadManager]) -> bool {
        if wms.len() < 2 {
            return false;
        }
        if self.sequential {
            errln!("builds: one after the other (--sequential)");
            return false;
        }
        true
    }

    /// What the release is about to do, before it is asked to start.
    fn introduce(
        &self,
        host: &HostTree,
        target: &Target,
        wms: &[WorkloadManager],
        launcher: &Decision<Artifactory>,
        source: &LauncherSource,
        side_by_side: bool,
    ) {
        let how = if side_by_side {
            "side by side"
        } else if wms.len() > 1 {
            "one after the other"
        } else {
            "alone"
        };
        let name = launcher.launcher().file_name();
        let package = match launcher {
            Decision::Fetch { .. } => format!("{name} (the newest release, fetched first)"),
            _ => name,
        };
        let branch = match target {
            Target::New { name, from } => format!(
                "the new branch {name} (from {})",
                from.as_deref().unwrap_or("the detached HEAD")
            ),
            Target::Current(name) => format!("the current branch {name}"),
        };
        let (images, them) = if wms.len() > 1 {
            ("images", "them")
        } else {
            ("image", "it")
        };
        errln!(
            "release: build the {} {images} {how} with launcher {package}, pin {them} in {}, and commit it alone \
             on {branch}",
            names(wms),
            host.show(&host.images_conf)
        );
        if let Some(caveat) = source.caveat() {
            errln!("note: this release does not carry the newest launcher: {caveat}");
        }
    }

    /// The whole plan, changing nothing; what would stop a real release is listed, not fatal.
    fn dry_run(&self, sh: &Shell, host: &HostTree, wms: &[WorkloadManager]) -> anyhow::Result<()> {
        let mut stops = Vec::new();
        outln!("# release plan (dry run: nothing is written, fetched, built or committed)");
        let checkout = git::checkout(sh, &host.root);
        let target = match &checkout {
            Ok(checkout) => match self.target(sh, host, checkout) {
                Ok(target) => Some(target),
                Err(err) => {
                    stops.push(format!("{err:#}"));
                    None
                }
            },
            Err(err) => {
                stops.push(format!("{err:#}"));
                None
            }
        };
        let branch = match (&target, &checkout) {
            (Some(Target::New { name, from }), Ok(checkout)) => {
                format!(
                    "# branch: a new {name} from {} (at {})",
                    from.as_deref().unwrap_or("the detached HEAD"),
                    checkout.head
                )
            }
            (Some(Target::Current(name)), _) => format!("# branch: the current {name} (--redo)"),
            _ => "# branch: none (see below)".to_string(),
        };
        outln!("{branch}");
        if let Some(problem) = git::identity_problem(sh, &host.root) {
            stops.push(format!(
                "{problem}: the release commits as you; set it first: {}",
                git::IDENTITY_FIX
            ));
        }

        let inputs = Inputs::read(host)?;
        if let Err(err) = TaskImages::read(host, &inputs.config).refuse_mismatches(host) {
            stops.push(format!("task images: {err:#}"));
        }
        match packer::check_version(sh, &inputs.template) {
            Ok(version) => outln!("# packer: {} (installed)", packer::version_text(version)),
            Err(err) => stops.push(format!("packer: {err:#}")),
        }
        if let Err(err) = Gcloud::new(sh, &inputs.config.gcp.project) {
            stops.push(format!("gcloud: {err:#}"));
        }
        let source = self.launcher_source();
        let launcher = match launcher::choose(host, &inputs.config, &self.wanted()) {
            Ok(chosen) => {
                let how = match &chosen.decision {
                    Decision::Fetch { .. } => "the newest release, to be fetched into build/",
                    Decision::Copy { .. } => "given with --launcher, to be copied into build/",
                    _ => "in build/",
                };
                let launcher = chosen.planned();
                match &launcher {
                    Launcher::Known(package) => {
                        outln!("# launcher: {} ({how})", package.file_name)
                    }
                    Launcher::Unknown { .. } => {
                        outln!("# launcher: unknown (a real release would stop: see the end)")
                    }
                }
                if let Decision::Refuse { why } = &chosen.decision {
                    stops.push(format!("launcher: {why}"));
                }
                if let Some(newest) = chosen.newest {
                    outln!("# launcher: {newest}");
                }
                if let (Some(caveat), Launcher::Known(_)) = (source.caveat(), &launcher) {
                    outln!("# note: this release would not carry the newest launcher: {caveat}");
                }
                launcher
            }
            Err(err) => {
                outln!("# launcher: unknown (a real release would stop: see the end)");
                stops.push(format!("launcher: {err:#}"));
                Launcher::Unknown {
                    why: format!("{err:#}"),
                }
            }
        };
        let side_by_side = self.side_by_side(wms);
        outln!(
            "# builds: {}",
            if side_by_side {
                "side by side, each line of output behind [slurm] or [pbs]"
            } else {
                "one after the other"
            }
        );
        for &wm in wms {
            // The source image is resolved only when the builds start.
            let plan = Plan::new(host, &inputs, wm, &launcher, None, false)?;
            outln!("{}", plan.preview(sh, host, &format!("[{wm}] ")));
            let gate = Gate::read(host, &inputs.config, &inputs.template, self.no_verify)?;
            outln!(
                "{}",
                gate.preview(
                    &inputs.config.gcp.project,
                    &format!("det-environments-{wm}-ci-<timestamp>"),
                    &format!("[{wm}] ")
                )
            );
        }
        let conf = read_images_conf(host)?;
        outln!(
            "# {} would change:\n{}",
            host.show(&host.images_conf),
            release::pin_preview(&conf, wms).trim_end()
        );
        let pins: Vec<release::Pin> = WorkloadManager::ALL
            .into_iter()
            .map(|wm| {
                if wms.contains(&wm) {
                    release::Pin {
                        wm,
                        image: format!("<the new {wm} image>"),
                        launcher: launcher.known().map(|package| package.version.to_string()),
                    }
                } else {
                    release::Pin {
                        wm,
                        image: conf.pinned(wm).unwrap_or("<none>").to_string(),
                        launcher: Some("<read from the image>".to_string()),
                    }
                }
            })
            .collect();
        outln!(
            "# then, when every build succeeded, commit {} alone with the message:\n{}",
            host.show(&host.images_conf),
            release::commit_message(&pins, &launcher, &source).trim_end()
        );
        outln!("# and end with the checklist: push, pull request, prune (the plan of `cargo xtask slurm-image images`)");
        if !stops.is_empty() {
            outln!("# a real release would stop here, before any work:");
            for stop in stops {
                outln!("#   {stop}");
            }
        }
        Ok(())
    }
}

/// What each build needs to look for an image it can reuse instead of building.
struct Reuse<'a> {
    project: &'a str,
    /// `--force`: build even where one exists.
    force: bool,
    /// Each new image is verified before its pin, side by side like the builds.
    gate: &'a Gate,
}

/// Runs the builds, side by side (one thread and one shell each) or one after the other, each
/// with its output behind `[wm] `. A build not yet started when a signal arrives is not started.
fn run_builds(
    sh: &Shell,
    host: &HostTree,
    plans: &[Plan],
    reuse: &Reuse<'_>,
    side_by_side: bool,
    guard: &InterruptGuard,
) -> Vec<anyhow::Result<Pinned>> {
    let run = |sh: Shell, plan: &Plan| -> anyhow::Result<Pinned> {
        if let Some(signal) = guard.received() {
            bail!("not started: {} arrived first", signal_name(signal));
        }
        let prefix = format!("[{}] ", plan.wm);
        // Each build asks about reuse on its own, with its own shell.
        let gcloud = Gcloud::new(&sh, reuse.project)?;
        build_one(
            &sh,
            host,
            plan,
            &gcloud,
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
                scope.spawn(move || run(sh, plan))
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

/// Commits images.conf alone on the release branch, with every pin and its launcher in the
/// message; the commit, abbreviated. The message is saved first, so that a commit that fails
/// (a hook, a signing key) leaves the exact command that uses it.
fn commit_pins(
    sh: &Shell,
    host: &HostTree,
    target: &Target,
    pins: &[release::Pin],
    package: &LauncherPackage,
    source: &LauncherSource,
    inside: &[String],
) -> anyhow::Result<String> {
    let images_conf = host.show(&host.images_conf);
    let message = format!(
        "{}{}",
        release::commit_message(pins, &Launcher::Known(package.clone()), source),
        verification::inside_section(inside)
    );
    let message_file = host.state_dir.join("release-commit-message.txt");
    write_atomically(&message_file, message.as_bytes())?;
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
        git::commit_file(sh, &host.root, Path::new(&images_conf), &message).with_context(|| {
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
fn with_launchers(
    sh: &Shell,
    project: &str,
    pins: &[(WorkloadManager, String)],
    this_run: &[WorkloadManager],
    package: &LauncherPackage,
) -> Vec<release::Pin> {
    let kept = pins.iter().any(|(wm, _)| !this_run.contains(wm));
    let listed = if kept {
        match Gcloud::new(sh, project).and_then(|gcloud| gcloud.list_images()) {
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
            }
        })
        .collect()
}

/// Every image was reused and is already pinned at HEAD: no commit, and no branch left behind
/// that holds nothing; the checkout goes back to where the release started.
fn nothing_to_release(
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

/// Workload managers for a message: `slurm and pbs`.
fn names(wms: &[WorkloadManager]) -> String {
    wms.iter()
        .map(|wm| wm.key())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The end of a failed build's packer log, where its error usually is.
fn show_log_tail(host: &HostTree, plan: &Plan) {
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

/// The prune plan as `images` computes it, now that the new images are pinned; nothing is
/// deleted.
fn show_prune_plan(sh: &Shell, host: &HostTree, config: &Config) {
    match Survey::take(sh, host, config, config.prune.keep) {
        Ok(survey) => {
            survey.print(&WorkloadManager::ALL);
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
