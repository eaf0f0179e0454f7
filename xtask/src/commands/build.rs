//! `build`: bake one workload manager's image with packer and pin it in images.conf.

use clap::Args;
use xshell::Shell;

use crate::commands::flags::{FormatFlags, ImageFlags, LauncherFlags, PackerFlags, PlanFlags};
use crate::commands::{
    HelpFooter, WorkloadManagerArg, ARTIFACTORY_ENVIRONMENT, GCLOUD_ENVIRONMENT,
};
use crate::edges::packer::Output;
use crate::host::HostTree;
use crate::model::config::Config;
use crate::model::image::Image;
use crate::model::images_conf::Change;
use crate::model::launcher_choice::Purpose;
use crate::model::records::{Outcome, Record};
use crate::model::WorkloadManager;
use crate::output;
use crate::steps::build::{build_one, Inputs};
use crate::steps::build_lock;
use crate::steps::build_plan::{self, Asked, ForRun, Mode};
use crate::steps::consumers::TaskImages;
use crate::steps::survey::Survey;
use crate::steps::uncommitted::warn_uncommitted_inputs;
use crate::steps::verify;
use crate::term::exit::{self, Failure};
use crate::term::{signal_name, Interrupted};

/// Build an image with packer and pin it in images.conf.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("build", "bake the SLURM image and pin it in images.conf"),
        ("build --wm pbs", "the same for PBS"),
        ("build --launcher ~/hpe-hpc-launcher_3.3.1-2_amd64.deb", "with this launcher package"),
        ("build --offline", "with the launcher package in build/, without Artifactory"),
        ("build --dry-run", "show the variables and the packer command only"),
        ("build --on-error=abort", "keep packer's VM when the build fails, to look into it"),
    ],
    environment: &[ARTIFACTORY_ENVIRONMENT, GCLOUD_ENVIRONMENT],
    config: &["[gcp]", "[image]", "[slurm]", "[pbs]", "[artifactory]", "[prune] (for the prune hint after the build)", "[verify]"],
}.render())]
pub struct Build {
    /// The workload manager the image is for.
    #[arg(long, value_enum, ignore_case = true, default_value_t = WorkloadManagerArg::Slurm)]
    pub wm: WorkloadManagerArg,
    /// Run `packer build -debug` with PACKER_LOG=10: packer waits for Enter before each step.
    #[arg(long)]
    pub debug: bool,
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
}

impl Build {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        self.output.start();
        let wm = WorkloadManager::from(self.wm);
        let inputs = Inputs::read(host).map_err(|err| Failure::Stopped.mark(err))?;
        // The image would cache task images the clusters do not use: worth saying, not
        // worth stopping a build someone asked for.
        TaskImages::read(host, &inputs.config).warn(host);
        warn_uncommitted_inputs(sh, host);
        if self.plan.dry_run {
            let gathered = build_plan::gather(sh, host, &inputs, &self.asked(), Mode::DryRun)?;
            outln!("{}", gathered.shown.render());
            output::record(&Record::Plan((&gathered.shown).into()));
            let stopped = match gathered.shown.unknown.len() {
                0 => None,
                n => Some(Failure::Stopped.error(format!(
                    "a real build would stop: {n} thing(s) it could not find out, listed at the end of the plan"
                ))),
            };
            output::record(&Record::Result(dry_run_outcome("build", stopped.as_ref())));
            return stopped.map_or(Ok(()), Err);
        }
        let _lock =
            build_lock::take(host, &[wm], "build").map_err(|err| Failure::Stopped.mark(err))?;
        let gathered = build_plan::gather(sh, host, &inputs, &self.asked(), Mode::Run)?;
        let ForRun {
            build: plan,
            gcloud,
            gate,
            listing,
        } = gathered.for_run()?;
        let pinned = build_one(
            sh,
            host,
            &plan,
            gcloud.as_ref(),
            listing,
            self.image.force,
            &gate,
            Output::Inherit,
        )
        .map_err(|err| match verify::failed(&err) {
            Some(_) => Failure::Verification.mark(err),
            None => err,
        })?;
        if let Some(signal) = pinned.interrupted {
            return Err(Interrupted::error(
                signal,
                format!(
                    "interrupted by {} just as packer finished: {} is built and pinned in {}; nothing else was done",
                    signal_name(signal),
                    pinned.image,
                    host.show(&host.images_conf)
                ),
            ));
        }
        output::record(&Record::Result(Outcome {
            workload_managers: vec![pinned.record(wm)],
            ..Outcome::done("build")
        }));
        // The pin said its line; what is left is the next steps. The table of images is
        // `images`'s to show, when asked.
        next_steps(host, wm, &pinned.change);
        prune_hint(sh, host, &inputs.config, wm, pinned.images);
        Ok(())
    }
}

impl Build {
    /// Everything the flags ask of the build.
    fn asked(&self) -> Asked {
        Asked {
            wm: self.wm.into(),
            wanted: self.package.wanted(self.plan.yes, Purpose::Build),
            force: self.image.force,
            no_verify: self.image.no_verify,
            debug: self.debug,
            on_error: self.packer.on_error(),
        }
    }
}

/// The result record of a dry run: done, or the stop it lists (exit 3).
pub fn dry_run_outcome(command: &'static str, stopped: Option<&anyhow::Error>) -> Outcome {
    let outcome = match stopped {
        None => Outcome::done(command),
        Some(err) => Outcome::failed(command, exit::exit_code(err), format!("{err:#}")),
    };
    Outcome {
        dry_run: true,
        ..outcome
    }
}

/// What `prune` would delete now, in one line; a failure only warns: the image is pinned.
/// `listed` is the project's images when this run has just listed them; else they are listed.
fn prune_hint(
    sh: &Shell,
    host: &HostTree,
    config: &Config,
    wm: WorkloadManager,
    listed: Option<Vec<Image>>,
) {
    let survey = match listed {
        Some(listed) => Survey::of(sh, host, config, config.prune.keep, listed),
        None => Survey::take(sh, host, config, config.prune.keep),
    };
    let survey = match survey {
        Ok(survey) => survey,
        Err(err) => {
            errln!("warning: the image is pinned, but listing the images for the prune hint failed: {err:#}");
            return;
        }
    };
    let (deprecated, deleted) = (survey.deprecations(wm), survey.deletions(wm));
    let mut would = Vec::new();
    if !deprecated.is_empty() {
        would.push(format!(
            "deprecate {} old {wm} image(s): {}",
            deprecated.len(),
            deprecated.join(", ")
        ));
    }
    if !deleted.is_empty() {
        would.push(format!(
            "delete {} deprecated {wm} image(s): {}",
            deleted.len(),
            deleted.join(", ")
        ));
    }
    if would.is_empty() {
        return;
    }
    let place = if survey.branches_checked {
        ""
    } else {
        "in the repository's git checkout, "
    };
    outln!(
        "then: {place}`cargo xtask slurm-image prune` would {} (`images` lists them all)",
        would.join("; and ")
    );
}

/// The last lines of a build: what a person does next.
fn next_steps(host: &HostTree, wm: WorkloadManager, change: &Change) {
    if *change == Change::Unchanged {
        return;
    }
    let shown = host.show(&host.images_conf);
    outln!("next: git add {shown} && git commit -m \"Update the {wm} test cluster image\"");
}
