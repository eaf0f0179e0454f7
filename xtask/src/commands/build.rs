//! `build`: bake one workload manager's image with packer and pin it in images.conf.

use clap::Args;
use xshell::Shell;

use crate::commands::{HelpFooter, WorkloadManagerArg, ARTIFACTORY_ENVIRONMENT};
use crate::edges::ansible;
use crate::edges::gcloud::Gcloud;
use crate::edges::packer::{self, Output};
use crate::host::HostTree;
use crate::model::images_conf::Change;
use crate::model::launcher_choice::{Decision, Launcher, Purpose, Wanted};
use crate::model::provenance::Verdict;
use crate::model::WorkloadManager;
use crate::steps::build::{
    build_one, ensure_plugins, resolve_source, source_for, source_origin, Inputs, Plan,
};
use crate::steps::build_lock;
use crate::steps::consumers::TaskImages;
use crate::steps::host_files::read_images_conf;
use crate::steps::launcher;
use crate::steps::playbook::{check_playbook_before_vm, check_playbooks};
use crate::steps::survey;
use crate::steps::verify::Gate;
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
    ],
    environment: ARTIFACTORY_ENVIRONMENT,
    config: &["[gcp]", "[image]", "[slurm]", "[pbs]", "[artifactory]", "[prune] (for the list of images after the build)", "[verify]"],
}.render())]
pub struct Build {
    /// The workload manager the image is for.
    #[arg(long, value_enum, ignore_case = true, default_value_t = WorkloadManagerArg::Slurm)]
    pub wm: WorkloadManagerArg,
    /// Run `packer build -debug` with PACKER_LOG=10: packer waits for Enter before each step.
    #[arg(long)]
    pub debug: bool,
    /// Never contact Artifactory; build with the launcher package already in build/.
    #[arg(long)]
    pub offline: bool,
    /// Build with this launcher package (copied into build/).
    #[arg(long, value_name = "PATH")]
    pub launcher: Option<std::path::PathBuf>,
    /// Replace an older launcher package in build/ with the newest release without asking.
    #[arg(long)]
    pub yes: bool,
    /// Show everything up to packer (launcher, source image, variables, command, fingerprint,
    /// reuse or why a build is needed); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Build even when an image made from the same inputs exists (it would be reused).
    #[arg(long)]
    pub force: bool,
    /// Pin the new image without booting it to run the checks script (the pin is unverified).
    #[arg(long)]
    pub no_verify: bool,
}

impl Build {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let wm = WorkloadManager::from(self.wm);
        let inputs = Inputs::read(host)?;
        // The image would cache task images the clusters do not use: worth saying, not
        // worth stopping a build someone asked for.
        TaskImages::read(host, &inputs.config).warn(host);
        if self.dry_run {
            return self.dry_run(sh, host, &inputs);
        }
        let _lock = build_lock::take(host, &[wm], "build")?;
        let version = packer::check_version(sh, &inputs.template)?;
        // packer's IAP tunnel runs gcloud, and the source image, the reuse lookup and the
        // image summary need it: find out now, not after an hour of VM time.
        let gcloud = Gcloud::new(sh, &inputs.config.gcp.project)?;
        ensure_plugins(sh, host, &inputs.template, version)?;
        check_playbook_before_vm(sh, host, &inputs.template, &[wm])?;

        let chosen = launcher::choose(host, &inputs.config, &self.wanted())?;
        let package = launcher::carry_out(host, chosen.decision, false)?;
        let source = source_for(sh, &inputs, wm)?;
        let plan = Plan::new(
            host,
            &inputs,
            wm,
            &Launcher::Known(package),
            Some(&source),
            self.debug,
        )?;
        let gate = Gate::read(host, &inputs.config, &inputs.template, self.no_verify)?;
        let pinned = build_one(sh, host, &plan, &gcloud, self.force, &gate, Output::Inherit)?;
        if let Some(signal) = pinned.interrupted {
            // Stopping was asked for: the listing of images is left out.
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
        survey::after_build(sh, host, &inputs.config, wm);
        next_steps(host, wm, &pinned.change);
        Ok(())
    }

    /// Everything up to packer, changing nothing, and never failing for lack of network or
    /// tools: what it cannot find out, it lists. Its gcloud calls only read.
    fn dry_run(&self, sh: &Shell, host: &HostTree, inputs: &Inputs) -> anyhow::Result<()> {
        let wm = WorkloadManager::from(self.wm);
        let mut unknown = Vec::new();
        match packer::check_version(sh, &inputs.template) {
            Ok(version) => outln!("packer: {} (installed)", packer::version_text(version)),
            Err(err) => unknown.push(format!("packer: {err:#}")),
        }
        let gcloud = match Gcloud::new(sh, &inputs.config.gcp.project) {
            Ok(gcloud) => Some(gcloud),
            Err(err) => {
                unknown.push(format!("gcloud: {err:#}"));
                None
            }
        };
        if ansible::installed(sh) {
            match check_playbooks(sh, host, &inputs.template, wm) {
                Ok(checked) if checked.is_empty() => {}
                Ok(checked) => outln!(
                    "playbook: {} passes `ansible-playbook --syntax-check`",
                    checked.join(", ")
                ),
                Err(err) => unknown.push(format!("playbook: {err:#}")),
            }
        } else {
            unknown.push(format!(
                "playbook: ansible-playbook is not installed to check it: {}",
                ansible::INSTALL_HINT
            ));
        }
        // Whether the launcher reaches build/ only when a real build fetches or copies it.
        let (launcher, arrives) = match launcher::choose(host, &inputs.config, &self.wanted()) {
            Ok(chosen) => {
                let (launcher, arrives) = (chosen.planned(), chosen.decision.changes_build_dir());
                show_launcher(&launcher, arrives, host);
                if let Some(newest) = &chosen.newest {
                    outln!("launcher: {newest}");
                }
                match chosen.decision {
                    Decision::Refuse { why } => unknown.push(format!("launcher: {why}")),
                    decision => {
                        launcher::carry_out(host, decision, true)?;
                    }
                }
                (launcher, arrives)
            }
            Err(err) => {
                let why = format!("{err:#}");
                unknown.push(format!("launcher: {why}"));
                show_launcher(&Launcher::Unknown { why: why.clone() }, false, host);
                (Launcher::Unknown { why }, false)
            }
        };
        let source = if gcloud.is_none() {
            unknown.push("source image: gcloud is needed to resolve the family".to_string());
            None
        } else {
            match resolve_source(sh, &inputs.config, wm) {
                Ok(image) => {
                    outln!(
                        "source image: {image} ({})",
                        source_origin(&inputs.config, wm)
                    );
                    Some(image)
                }
                Err(err) => {
                    unknown.push(format!("source image: {err:#}"));
                    None
                }
            }
        };
        let plan = Plan::new(host, inputs, wm, &launcher, source.as_deref(), self.debug)?;
        outln!("{}", plan.preview(sh, host, ""));
        match Gate::read(host, &inputs.config, &inputs.template, self.no_verify) {
            Ok(gate) => outln!(
                "{}",
                gate.preview(
                    &inputs.config.gcp.project,
                    &format!("det-environments-{wm}-ci-<timestamp>"),
                    ""
                )
            ),
            Err(err) => unknown.push(format!("verification: {err:#}")),
        }
        match &plan.fingerprint {
            Some(fingerprint) => outln!("# input fingerprint: {fingerprint}"),
            None if launcher.known().is_none() => {
                outln!("# input fingerprint: unknown until the launcher is known")
            }
            None if arrives => outln!(
                "# input fingerprint: unknown until the launcher is in build/ (it covers the package's bytes)"
            ),
            None => unknown.push(
                "input fingerprint: it covers the source image, which could not be resolved".into(),
            ),
        }
        let pinned = match read_images_conf(host) {
            Ok(conf) => conf.pinned(wm).map(str::to_string),
            Err(err) => {
                unknown.push(format!("images.conf: {err:#}"));
                None
            }
        };
        let mut verdict = None;
        match (&gcloud, &plan.fingerprint) {
            // The launcher's own line above says why a real build would stop.
            (_, None) if launcher.known().is_none() => {}
            (Some(_), None) if arrives => outln!(
                "# reuse: looked up once the launcher is in build/, before packer runs"
            ),
            (None, _) | (_, None) => unknown.push(
                "reuse: whether an image made from these inputs exists (that needs gcloud and the input fingerprint)"
                    .into(),
            ),
            (Some(gcloud), Some(_)) => {
                match plan.verdict(gcloud, pinned.as_deref(), self.force) {
                    Ok(found) => verdict = found,
                    Err(err) => unknown.push(format!("reuse: {err:#}")),
                }
            }
        }
        if let Some(verdict) = &verdict {
            outln!("# {}", plan.explain(verdict, pinned.as_deref()));
        }
        let shown = host.show(&host.images_conf);
        let new = match &verdict {
            Some(Verdict::Reuse { image }) => image.clone(),
            _ => format!("det-environments-{wm}-ci-<timestamp>, the image packer builds"),
        };
        match pinned {
            Some(old) if old == new => outln!("# {shown} already pins `{wm}: {old}`: unchanged"),
            Some(old) => outln!("# then in {shown}: `{wm}: {old}` -> `{wm}: {new}`"),
            None => outln!("# then in {shown}: a new line `{wm}: {new}`"),
        }
        if !unknown.is_empty() {
            outln!("# could not find out (a real build would stop here):");
            for line in unknown {
                outln!("#   {line}");
            }
        }
        Ok(())
    }
}

/// The dry run's launcher line: the package a build would use, or unknown.
fn show_launcher(launcher: &Launcher, arrives: bool, host: &HostTree) {
    let build_dir = host.show(&host.build_dir);
    match launcher {
        Launcher::Known(package) if arrives => outln!(
            "launcher: {} (a real build puts it in {build_dir} first)",
            package.file_name
        ),
        Launcher::Known(package) => outln!("launcher: {} (in {build_dir})", package.file_name),
        Launcher::Unknown { .. } => {
            outln!("launcher: unknown (a real build would stop: see the end)")
        }
    }
}

impl Build {
    /// The launcher as the flags ask for it.
    fn wanted(&self) -> Wanted {
        Wanted {
            path: self.launcher.clone(),
            offline: self.offline,
            yes: self.yes,
            purpose: Purpose::Build,
        }
    }
}

/// The last lines of a build: what a person does next.
fn next_steps(host: &HostTree, wm: WorkloadManager, change: &Change) {
    if *change == Change::Unchanged {
        return;
    }
    let shown = host.show(&host.images_conf);
    outln!("next: git add {shown} && git commit -m \"Update the {wm} test cluster image\"");
}
