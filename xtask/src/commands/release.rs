//! `release`: the pre-release checklist as one command: both images built side by side on a new
//! branch, their pins committed, and what is left for a person spelled out.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use xshell::Shell;

use crate::commands::{HelpFooter, WorkloadManagerArg, ARTIFACTORY_ENVIRONMENT};
use crate::edges::artifactory::Artifactory;
use crate::edges::gcloud::Gcloud;
use crate::edges::git;
use crate::edges::packer;
use crate::host::HostTree;
use crate::model::build_plan::Reuse as Reusing;
use crate::model::launcher_choice::{Decision, Launcher, Purpose, Wanted};
use crate::model::release::{self, LauncherSource, Released};
use crate::model::WorkloadManager;
use crate::steps::build::{ensure_plugins, source_for, Inputs, Pinned, Plan};
use crate::steps::build_lock;
use crate::steps::build_plan::{self, Asked, Mode, Unknowns};
use crate::steps::consumers::TaskImages;
use crate::steps::host_files::read_images_conf;
use crate::steps::launcher;
use crate::steps::playbook::check_playbook_before_vm;
use crate::steps::release::{
    commit_pins, names, nothing_to_release, run_builds, show_log_tail, show_prune_plan, target,
    with_launchers, Reuse, Target,
};
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
        let target = target(
            sh,
            host,
            &checkout,
            !self.redo.is_empty(),
            self.branch.as_deref(),
        )?;
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
            Ok(checkout) => match target(
                sh,
                host,
                checkout,
                !self.redo.is_empty(),
                self.branch.as_deref(),
            ) {
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
        let gcloud = match Gcloud::new(sh, &inputs.config.gcp.project) {
            Ok(gcloud) => Some(gcloud),
            Err(err) => {
                stops.push(format!("gcloud: {err:#}"));
                None
            }
        };
        let source = self.launcher_source();
        let (launcher, arrives) = match launcher::choose(host, &inputs.config, &self.wanted()) {
            Ok(chosen) => {
                let arrives = chosen.decision.changes_build_dir();
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
                (launcher, arrives)
            }
            Err(err) => {
                outln!("# launcher: unknown (a real release would stop: see the end)");
                stops.push(format!("launcher: {err:#}"));
                let why = format!("{err:#}");
                (Launcher::Unknown { why }, false)
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
        // Each workload manager's build decided as `build --dry-run` decides it: the source
        // image, the variables, the verification and reuse or build.
        let mut new_images = Vec::new();
        for &wm in wms {
            let asked = Asked {
                wm,
                wanted: self.wanted(),
                force: self.force,
                no_verify: self.no_verify,
                debug: false,
            };
            let mut unknown = Unknowns::new(Mode::DryRun);
            let decided = build_plan::decide(
                sh,
                host,
                &inputs,
                &asked,
                &launcher,
                arrives,
                gcloud.as_ref(),
                &mut unknown,
            )?;
            let tag = format!("[{wm}] ");
            if let Some((image, origin)) = &decided.source {
                outln!("# {tag}source image: {image} ({origin})");
            }
            outln!("{}", decided.build.preview(sh, host, &tag));
            // The verification step behind the workload manager's tag, as the builds' lines are.
            if let Some(gate) = &decided.gate {
                outln!(
                    "{}",
                    gate.preview(
                        &inputs.config.gcp.project,
                        &format!("det-environments-{wm}-ci-<timestamp>"),
                        &tag
                    )
                );
            }
            match &decided.reuse {
                Reusing::Decided { explained, .. } => outln!("# {tag}{explained}"),
                Reusing::AfterLauncherArrives => outln!(
                    "# {tag}reuse: looked up once the launcher is in build/, before packer runs"
                ),
                Reusing::NotLookedUp => {}
            }
            new_images.push((wm, decided.reused().map(str::to_string)));
            // The launcher's own stop is listed once, above.
            stops.extend(
                unknown
                    .lines
                    .into_iter()
                    .filter(|line| !line.starts_with("launcher: "))
                    .map(|line| format!("{tag}{line}")),
            );
        }
        let conf = read_images_conf(host)?;
        outln!(
            "# {} would change:\n{}",
            host.show(&host.images_conf),
            release::pin_preview(&conf, &new_images).trim_end()
        );
        let pins: Vec<release::Pin> = WorkloadManager::ALL
            .into_iter()
            .map(|wm| {
                if let Some((_, reused)) = new_images.iter().find(|(new, _)| *new == wm) {
                    release::Pin {
                        wm,
                        image: reused
                            .clone()
                            .unwrap_or_else(|| format!("<the new {wm} image>")),
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
