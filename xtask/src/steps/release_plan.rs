//! Gathering a release's plan: each decision `release` makes before it asks to start, made
//! once by the same steps for the dry run, which shows it, and the run, which carries it out.

use anyhow::{anyhow, Context};
use xshell::Shell;

use crate::edges::ansible;
use crate::edges::artifactory::Artifactory;
use crate::edges::compute::{self, Compute};
use crate::edges::git::{self, Checkout};
use crate::edges::packer::{self, OnError};
use crate::host::HostTree;
use crate::model::launcher_choice::{Decision, Launcher, Wanted};
use crate::model::release::LauncherSource;
use crate::model::release_plan::{Arrival, Playbooks, ReleasePlan, Target, WmBuild};
use crate::model::{Version, WorkloadManager};
use crate::steps::build::Inputs;
use crate::steps::build_plan::{self, Choices, Listing, Mode, Unknowns};
use crate::steps::consumers::TaskImages;
use crate::steps::host_files::read_images_conf;
use crate::steps::launcher;
use crate::steps::playbook::{check_playbook_before_vm, check_playbooks};
use crate::steps::release::target;
use crate::steps::uncommitted::refuse_uncommitted;
use crate::steps::verify::Gate;

/// What the flags ask of a release.
pub struct Asked {
    pub wms: Vec<WorkloadManager>,
    /// `--redo`: finish a release on its branch.
    pub redo: bool,
    pub branch: Option<String>,
    pub wanted: Wanted,
    pub source: LauncherSource,
    pub sequential: bool,
    pub force: bool,
    pub on_error: Option<OnError>,
    pub no_verify: bool,
}

/// The plan, and what the run needs to carry it out; in a dry run any of it may be missing.
pub struct Gathered {
    pub plan: ReleasePlan,
    pub checkout: Option<Checkout>,
    pub inputs: Inputs,
    pub packer: Option<Version>,
    pub decision: Option<Decision<Artifactory>>,
    pub gate: Option<Gate>,
    /// Each workload manager's source image, in the order of `plan.wms`.
    pub sources: Vec<Option<String>>,
    /// A run's listing of the project's images for builds side by side.
    pub listing: Option<Listing>,
}

/// A run's plan, every step of which succeeded.
pub struct Ready {
    pub plan: ReleasePlan,
    pub target: Target,
    pub checkout: Checkout,
    pub inputs: Inputs,
    pub packer: Version,
    pub decision: Decision<Artifactory>,
    pub gate: Gate,
    /// Each workload manager's source image, resolved before any work.
    pub sources: Vec<(WorkloadManager, String)>,
    /// The project's images, listed beside the source images for builds side by side.
    pub listing: Option<Listing>,
}

/// Decides everything up to the question whether to start, in the run's order: the checkout,
/// the git identity, uncommitted changes, the branch, the task images, packer, gcloud, the
/// playbook, the verification step, each workload manager's source image, the launcher, and in
/// a dry run each workload manager's build. A run stops at the first failure, before any side
/// effect (branch, download, plugin install, VM); a dry run lists each as a stop.
pub fn gather(sh: &Shell, host: &HostTree, asked: &Asked, mode: Mode) -> anyhow::Result<Gathered> {
    let mut unknown = Unknowns::new(mode);
    let checkout = unknown.settle("git", git::checkout(sh, &host.root))?;
    if let Some(problem) = git::identity_problem(sh, &host.root) {
        unknown.settle::<()>(
            "git identity",
            Err(anyhow!(
                "{problem}: a release ends in a commit made as you, so set it first: {}",
                git::IDENTITY_FIX
            )),
        )?;
    }
    if let Some(checkout) = &checkout {
        let refused = refuse_uncommitted(sh, host, checkout, asked.redo);
        unknown.settle("checkout", refused)?;
    }
    let target = match &checkout {
        Some(checkout) => unknown.settle(
            "branch",
            target(sh, host, checkout, asked.redo, asked.branch.as_deref()),
        )?,
        None => None,
    };
    let inputs = Inputs::read(host)?;
    let refused = TaskImages::read(host, &inputs.config).refuse_mismatches(host);
    let refused = match mode {
        Mode::Run => refused.context(
            "nothing done: a release's images must cache the task images the clusters use",
        ),
        Mode::DryRun => refused,
    };
    unknown.settle("task images", refused)?;
    let version = unknown.settle("packer", packer::check_version(sh, &inputs.template))?;
    // packer's IAP tunnel runs gcloud, and the source images and the prune plan at the end
    // need it: find out now, not after an hour of VM time.
    let gcloud = unknown.settle("gcloud", compute::connect(sh, &inputs.config.gcp.project))?;
    let playbooks = check_playbooks_of(sh, host, &inputs, &asked.wms, &mut unknown)?;
    // Read once for both builds: a missing checks script stops the release, not one build.
    let gate = build_plan::read_gate(&inputs, host, asked.no_verify, &mut unknown)?;
    // Side by side, a run lists the project's images for both builds' reuse lookup beside the
    // source images; one after the other, each build lists afresh when it starts.
    let side_by_side = asked.wms.len() > 1 && !asked.sequential;
    let (read, listing) = build_plan::read_cloud(
        host,
        &inputs,
        &asked.wms,
        gcloud.is_some(),
        mode == Mode::Run && side_by_side,
    );
    let mut sources = Vec::new();
    for (&wm, read) in asked.wms.iter().zip(read) {
        let mut own = Unknowns::new(mode);
        sources.push(build_plan::settle_source(&inputs, wm, read, &mut own)?);
        unknown
            .lines
            .extend(own.lines.into_iter().map(|line| format!("[{wm}] {line}")));
    }

    let (launcher, arrival, newest, decision) =
        match launcher::choose(host, &inputs.config, &asked.wanted) {
            Ok(chosen) => {
                if let Decision::Refuse { why } = &chosen.decision {
                    unknown.settle::<()>("launcher", Err(anyhow!("{why}")))?;
                }
                let arrival = match &chosen.decision {
                    Decision::Fetch { .. } => Arrival::Fetched,
                    Decision::Copy { .. } => Arrival::Copied,
                    _ => Arrival::InBuildDir,
                };
                (
                    chosen.planned(),
                    arrival,
                    chosen.newest.clone(),
                    Some(chosen.decision),
                )
            }
            Err(err) if mode == Mode::DryRun => {
                let why = format!("{err:#}");
                unknown.lines.push(format!("launcher: {why}"));
                (Launcher::Unknown { why }, Arrival::InBuildDir, None, None)
            }
            Err(err) => return Err(err),
        };

    // A run decides each build once the launcher is in build/ (its fingerprint covers the
    // package's bytes): `steps::release::prepare_builds`.
    let mut builds = Vec::new();
    let mut stops_of_builds = Vec::new();
    if mode == Mode::DryRun {
        let tools = packer::tool_labels(sh, version);
        for (&wm, source) in asked.wms.iter().zip(&sources) {
            let choices = Choices {
                launcher: &launcher,
                arrives: arrival != Arrival::InBuildDir,
                source: source.clone(),
                gate: gate.clone(),
                tools: &tools,
            };
            let (build, stops) = decide(sh, host, &inputs, asked, wm, choices, gcloud.as_deref())?;
            builds.push(build);
            stops_of_builds.extend(stops);
        }
    }
    let plan = ReleasePlan {
        wms: asked.wms.clone(),
        target,
        head: checkout.as_ref().map(|checkout| checkout.head.clone()),
        packer: version.map(packer::version_text),
        playbooks,
        launcher,
        arrival,
        newest,
        source: asked.source.clone(),
        side_by_side,
        builds,
        conf: read_images_conf(host)?,
        images_conf: host.show(&host.images_conf),
        stops: unknown.lines.into_iter().chain(stops_of_builds).collect(),
        pull_request: None,
    };
    Ok(Gathered {
        plan,
        checkout,
        inputs,
        packer: version,
        decision,
        gate,
        sources,
        listing,
    })
}

/// `ansible-playbook --syntax-check` on the playbook, as each workload manager's VM runs it:
/// a broken one stops the release before any VM does. Without ansible-playbook a run says so
/// and goes on, as a build does; the plan says it too.
fn check_playbooks_of(
    sh: &Shell,
    host: &HostTree,
    inputs: &Inputs,
    wms: &[WorkloadManager],
    unknown: &mut Unknowns,
) -> anyhow::Result<Playbooks> {
    if !ansible::installed(sh) {
        if unknown.mode() == Mode::Run {
            check_playbook_before_vm(sh, host, &inputs.template, wms)?;
        }
        return Ok(Playbooks::NotInstalled(ansible::INSTALL_HINT.to_string()));
    }
    let mut passed = Vec::new();
    for &wm in wms {
        let mut own = Unknowns::new(unknown.mode());
        if let Some(checked) =
            own.settle("playbook", check_playbooks(sh, host, &inputs.template, wm))?
        {
            passed.extend(checked);
        }
        unknown
            .lines
            .extend(own.lines.into_iter().map(|line| format!("[{wm}] {line}")));
    }
    passed.sort();
    passed.dedup();
    Ok(match passed.is_empty() {
        true => Playbooks::NonePassed,
        false => Playbooks::Passed(passed.join(", ")),
    })
}

/// One workload manager's build decided as `build --dry-run` decides it (the variables, the
/// verification, reuse or build), each line behind its tag, and what would stop it.
fn decide(
    sh: &Shell,
    host: &HostTree,
    inputs: &Inputs,
    asked: &Asked,
    wm: WorkloadManager,
    choices: Choices<'_>,
    gcloud: Option<&dyn Compute>,
) -> anyhow::Result<(WmBuild, Vec<String>)> {
    let one = build_plan::Asked {
        wm,
        wanted: asked.wanted.clone(),
        force: asked.force,
        no_verify: asked.no_verify,
        debug: false,
        on_error: asked.on_error,
    };
    let mut unknown = Unknowns::new(Mode::DryRun);
    let decided = build_plan::decide(host, inputs, &one, choices, gcloud, &mut unknown)?;
    let tag = format!("[{wm}] ");
    let verification = decided.gate.as_ref().map(|gate| {
        gate.preview(
            &inputs.config.gcp.project,
            &format!("det-environments-{wm}-ci-<timestamp>"),
            &tag,
        )
    });
    let build = WmBuild {
        wm,
        preview: decided.build.preview(sh, host, &tag),
        source: decided.source,
        verification,
        fingerprint: decided.build.fingerprint.clone(),
        reuse: decided.reuse,
    };
    // The launcher's own stop is listed once, by the release.
    let stops = unknown
        .lines
        .into_iter()
        .filter(|line| !line.starts_with("launcher: "))
        .map(|line| format!("{tag}{line}"))
        .collect();
    Ok((build, stops))
}

impl Gathered {
    /// What a run needs that a dry run may lack; a run's gathering has failed before any of it
    /// is missing.
    pub fn for_run(self) -> anyhow::Result<Ready> {
        let missing = "a release's plan is incomplete";
        Ok(Ready {
            target: self.plan.target.clone().context(missing)?,
            checkout: self.checkout.context(missing)?,
            inputs: self.inputs,
            packer: self.packer.context(missing)?,
            decision: self.decision.context(missing)?,
            gate: self.gate.context(missing)?,
            sources: self
                .plan
                .wms
                .iter()
                .zip(self.sources)
                .map(|(&wm, source)| Ok((wm, source.context(missing)?)))
                .collect::<anyhow::Result<_>>()?,
            listing: self.listing,
            plan: self.plan,
        })
    }
}
