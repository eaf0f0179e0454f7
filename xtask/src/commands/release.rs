//! `release`: the pre-release checklist as one command: both images built side by side on a new
//! branch, their pins committed, and what is left for a person spelled out.

use std::path::Path;

use clap::Args;
use xshell::Shell;

use crate::commands::build::dry_run_outcome;
use crate::commands::flags::{FormatFlags, ImageFlags, LauncherFlags, PackerFlags, PlanFlags};
use crate::commands::{
    HelpFooter, WorkloadManagerArg, ARTIFACTORY_ENVIRONMENT, GCLOUD_ENVIRONMENT,
};
use crate::edges::{git, packer};
use crate::host::HostTree;
use crate::model::launcher_choice::{Launcher, Purpose};
use crate::model::records::{self, Outcome, Record};
use crate::model::release::{self, LauncherSource, Released};
use crate::model::release_plan::Target;
use crate::model::verification::{self, Verified};
use crate::model::WorkloadManager;
use crate::output;
use crate::steps::build::ensure_plugins;
use crate::steps::build_lock;
use crate::steps::build_plan::Mode;
use crate::steps::host_files::read_images_conf;
use crate::steps::launcher;
use crate::steps::pull_request::{warn_if_behind, Opened, PullRequest};
use crate::steps::release::{
    commit_pins, nothing_to_release, prepare_builds, run_builds, settle, show_prune_plan,
    with_launchers, Reuse,
};
use crate::steps::release_plan::{self, Asked, Ready};
use crate::term::exit::Failure;
use crate::term::{approved, is_interactive, signal_name, InterruptGuard, Interrupted};

/// Build the SLURM and PBS images side by side on a new branch and commit both pins.
///
/// Refuses before any work (branch, download, plugin install, VM) when tracked files have
/// changes, a file packer reads from the template folder is untracked or ignored, the branch
/// exists, the playbook is broken or the checks script is missing. Uses the
/// newest launcher release (fetched into build/ when missing), creates the branch from HEAD,
/// builds both images at once, pins each in images.conf, commits images.conf alone when both
/// succeeded, and ends with what is left: push, pull request, prune.
#[derive(Args)]
// A release names its launcher one way: the newest, the one in build/ or the one given.
#[command(group(clap::ArgGroup::new("launcher_package").args(["offline", "launcher"])))]
#[command(after_help = HelpFooter {
    examples: &[
        ("release", "a branch, both images built at once with the newest launcher, committed"),
        ("release --dry-run", "the whole plan, from the launcher to the commit; changes nothing"),
        ("release --redo pbs", "finish a release whose pbs build failed: build only pbs again, then commit"),
        ("release --offline", "release with the launcher package in build/, without Artifactory"),
        ("release --yes --pr", "then push the branch and open its pull request with gh, printing its address"),
    ],
    environment: &[ARTIFACTORY_ENVIRONMENT, GCLOUD_ENVIRONMENT],
    config: &["[gcp]", "[image]", "[slurm]", "[pbs]", "[artifactory]", "[prune] (for the prune plan it ends with)"],
}.render())]
pub struct Release {
    /// The branch to create from HEAD [default: slurm-images-<YYYY-MM-DD>, today in UTC].
    #[arg(long, value_name = "NAME", conflicts_with = "redo")]
    pub branch: Option<String>,
    /// Build one image after the other instead of side by side.
    #[arg(long)]
    pub sequential: bool,
    #[command(flatten)]
    pub package: LauncherFlags,
    #[command(flatten)]
    pub plan: PlanFlags,
    #[command(flatten)]
    pub image: ImageFlags,
    #[command(flatten)]
    pub packer: PackerFlags,
    #[command(flatten)]
    pub output: FormatFlags,
    /// After the commit, push the branch to the remote the starting branch tracks and open
    /// the pull request with gh (its body: the commit message and each image's checks); print
    /// its address. Without gh, or gh not logged in, print the commands that do.
    #[arg(long)]
    pub pr: bool,
    /// Finish a release that stopped part-way, on its branch: build only these workload
    /// managers again (`pbs`, or `slurm,pbs`), keep the other's pin, and commit.
    #[arg(long, value_name = "WM", value_enum, value_delimiter = ',')]
    pub redo: Vec<WorkloadManagerArg>,
}

impl Release {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        self.output.start();
        if self.plan.dry_run {
            let mut gathered = release_plan::gather(sh, host, &self.asked(), Mode::DryRun)?;
            self.note_sequential(&gathered.plan.wms);
            // The pull request is prepared as the run prepares it: what would refuse is a stop.
            if let (true, Some(target)) = (self.pr, &gathered.plan.target) {
                match PullRequest::prepare(sh, host, target) {
                    Ok(pull_request) => {
                        gathered.plan.pull_request = Some(pull_request.planned(target.name()))
                    }
                    Err(err) => gathered.plan.stops.push(format!("pull request: {err:#}")),
                }
            }
            outln!("{}", gathered.plan.render());
            output::record(&Record::Plan((&gathered.plan).into()));
            let stopped = match gathered.plan.stops.len() {
                0 => None,
                n => Some(Failure::Stopped.error(format!(
                    "a real release would stop before any work: {n} stop(s), listed at the end of the plan"
                ))),
            };
            output::record(&Record::Result(dry_run_outcome(
                "release",
                stopped.as_ref(),
            )));
            return stopped.map_or(Ok(()), Err);
        }
        // Everything that can refuse does so in the gathering, before a download, a VM or a
        // branch. Both build locks, whichever it builds: the commit takes images.conf whole.
        let stopped = |err| Failure::Stopped.mark(err);
        let _locks = build_lock::take(host, &WorkloadManager::ALL, "release").map_err(stopped)?;
        let Ready {
            mut plan,
            target,
            checkout,
            inputs,
            packer,
            decision,
            gate,
            sources,
            listing,
        } = release_plan::gather(sh, host, &self.asked(), Mode::Run)
            .and_then(release_plan::Gathered::for_run)
            .map_err(stopped)?;
        let wms = plan.wms.clone();
        self.note_sequential(&wms);
        let pull_request = match self.pr {
            true => Some(PullRequest::prepare(sh, host, &target).map_err(stopped)?),
            false => None,
        };
        if let Some(base) = target.from() {
            warn_if_behind(sh, host, base, pull_request.is_some());
        }

        errln!("{}", plan.introduce());
        if !approved(self.plan.yes, "Start the release?")? {
            if !is_interactive() {
                return Err(Failure::Stopped.error(format!(
                    "nothing done: a release runs {} for about an hour and commits; rerun with --yes to start it \
                     (no terminal to ask on)",
                    if wms.len() > 1 { "two packer VMs" } else { "one packer VM" }
                )));
            }
            outln!("nothing done");
            return Ok(());
        }

        let package = launcher::carry_out(host, decision, false)?;
        plan.launcher = Launcher::Known(package.clone());
        ensure_plugins(sh, host, &inputs.template, packer)?;
        // After `packer init`, so that the plugins it installed are the ones recorded.
        let tools = packer::tool_labels(sh, Some(packer));
        let plans: Vec<_> =
            prepare_builds(host, &inputs, &sources, &package, self.packer.on_error())?
                .into_iter()
                .map(|plan| plan.with_tools(&tools))
                .collect();

        // From here a signal is recorded rather than fatal: the builds' VMs get deleted, the
        // pins already made are reported, and nothing is committed.
        let guard = InterruptGuard::new()?;
        if let Target::New { name, from } = &target {
            git::create_branch(sh, &host.root, name)?;
            git::mark_release_branch(sh, &host.root, name)?;
            if let Some(from) = from {
                git::record_release_base(sh, &host.root, name, from)?;
            }
            errln!(
                "branch: created {name} from {}",
                from.as_deref().unwrap_or(&checkout.head)
            );
        }
        let results = run_builds(
            sh,
            host,
            &plans,
            &Reuse {
                project: &inputs.config.gcp.project,
                force: self.image.force,
                gate: &gate,
            },
            listing,
            plan.side_by_side,
            &guard,
        );
        settle(host, &target, &plans, &results, &guard, |missing| {
            release::redo_command(missing, &plan.source, &self.carried_flags())
        })?;

        // Every build was pinned (`settle` let the release go on): what each did, for the result.
        let images: Vec<records::Image> = plans
            .iter()
            .zip(&results)
            .filter_map(|(plan, result)| Some(result.as_ref().ok()?.record(plan.wm)))
            .collect();
        let images_conf = host.show(&host.images_conf);
        if !git::differs_from_head(sh, &host.root, Path::new(&images_conf))? {
            drop(guard);
            nothing_to_release(sh, host, &target, &checkout.head)?;
            output::record(&Record::Result(Outcome {
                workload_managers: images,
                ..Outcome::done("release")
            }));
            return Ok(());
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
        // The message the dry run showed, over the pins now built.
        let pins = with_launchers(
            sh,
            host,
            &inputs.config.gcp.project,
            &all_pins,
            &wms,
            &package,
        );
        let message = format!(
            "{}{}",
            plan.commit_message(&pins),
            verification::inside_section(&inside)
        );
        // A signal during the builds is settled above; one since then, or during git's commit,
        // is honoured here: the pins are committed or not, and the tool says which.
        if let Some(signal) = guard.received() {
            return Err(Interrupted::error(
                signal,
                format!(
                    "release interrupted by {} before its commit: the images are pinned in {images_conf}, \
                     uncommitted on {}",
                    signal_name(signal),
                    target.name()
                ),
            ));
        }
        let committed = commit_pins(sh, host, &target, &message);
        if let Some(signal) = guard.received() {
            let what = match &committed {
                Ok(commit) => format!(
                    "the commit {commit} on {} holds the pins; what is left: push the branch and open the \
                     pull request",
                    target.name()
                ),
                Err(err) => format!("nothing was committed ({err:#})"),
            };
            return Err(Interrupted::error(
                signal,
                format!(
                    "release interrupted by {} during its commit: {what}",
                    signal_name(signal)
                ),
            ));
        }
        let commit = committed?;
        drop(guard);

        let verified: Vec<(WorkloadManager, String, Verified)> = plans
            .iter()
            .zip(&results)
            .filter_map(|(plan, result)| {
                let pinned = result.as_ref().ok()?;
                Some((plan.wm, pinned.image.clone(), pinned.verified.clone()))
            })
            .collect();
        let opened = match &pull_request {
            Some(pull_request) => {
                Some(pull_request.open(sh, host, target.name(), &message, &verified)?)
            }
            None => None,
        };

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
                source: &plan.source,
                commit: &commit,
                images_conf: &images_conf,
                origin: origin.as_deref(),
                base,
                opened: match &opened {
                    Some(Opened::Opened { remote, url }) => Some((remote.as_str(), url.as_str())),
                    _ => None,
                },
            })
        );
        if let Some(Opened::ByHand(commands)) = &opened {
            outln!("to open the pull request, as --pr would have with gh:\n{commands}");
        }
        for line in &inside {
            outln!("inside the images: {line}");
        }
        show_prune_plan(sh, host, &inputs.config);
        let pull_request = match &opened {
            Some(Opened::Opened { url, .. }) => {
                outln!("pull request: {url}");
                Some(url.clone())
            }
            _ => None,
        };
        output::record(&Record::Result(Outcome {
            workload_managers: images,
            branch: Some(target.name().to_string()),
            commit: Some(commit.clone()),
            pull_request,
            ..Outcome::done("release")
        }));
        Ok(())
    }

    /// Everything the flags ask of the release.
    fn asked(&self) -> Asked {
        Asked {
            wms: self.workload_managers(),
            redo: !self.redo.is_empty(),
            branch: self.branch.clone(),
            wanted: self.package.wanted(self.plan.yes, Purpose::Release),
            source: self.launcher_source(),
            sequential: self.sequential,
            force: self.image.force,
            no_verify: self.image.no_verify,
            on_error: self.packer.on_error(),
        }
    }

    /// The flags a `--redo` of this release keeps: without them it would build or verify
    /// differently, or stop to ask.
    fn carried_flags(&self) -> Vec<&'static str> {
        [
            (self.sequential, "--sequential"),
            (self.image.no_verify, "--no-verify"),
            (self.plan.yes, "--yes"),
        ]
        .into_iter()
        .filter_map(|(set, flag)| set.then_some(flag))
        .chain(self.packer.carried())
        .collect()
    }

    /// Says why builds that could run side by side do not.
    fn note_sequential(&self, wms: &[WorkloadManager]) {
        if self.sequential && wms.len() > 1 {
            errln!("builds: one after the other (--sequential)");
        }
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

    /// How the flags chose the launcher, for the commit message and the `--redo` command.
    fn launcher_source(&self) -> LauncherSource {
        match (&self.package.launcher, self.package.offline) {
            (Some(path), _) => {
                let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                LauncherSource::Given(absolute.display().to_string())
            }
            (None, true) => LauncherSource::Offline,
            (None, false) => LauncherSource::Newest,
        }
    }
}
