//! Gathering a build's plan: each decision `build` makes before packer, made once by the same
//! steps for the dry run, which shows it, and the run, which carries it out.

use anyhow::Context;
use xshell::Shell;

use crate::edges::ansible;
use crate::edges::compute::{self, Compute};
use crate::edges::packer::{self, OnError};
use crate::host::HostTree;
use crate::model::build_plan::{BuildPlan, Reuse};
use crate::model::image::Image;
use crate::model::launcher_choice::{Decision, Launcher, Wanted};
use crate::model::WorkloadManager;
use crate::session;
use crate::steps::build::{ensure_plugins, resolve_source, source_origin, Inputs, Plan};
use crate::steps::host_files::read_images_conf;
use crate::steps::launcher;
use crate::steps::playbook::{check_playbook_before_vm, check_playbooks};
use crate::steps::verify::Gate;
use crate::term::exit::Failure;

/// Whether the plan is only shown or carried out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Writes, downloads and changes nothing; what it cannot find out, it lists.
    DryRun,
    /// Fetches or copies the launcher and installs packer's plugins; the first step that fails
    /// stops the build.
    Run,
}

/// What the flags ask of a build.
pub struct Asked {
    pub wm: WorkloadManager,
    pub wanted: Wanted,
    pub force: bool,
    pub no_verify: bool,
    pub debug: bool,
    pub on_error: Option<OnError>,
}

/// The plan, and what the run needs to carry it out.
pub struct Gathered<'a> {
    pub shown: BuildPlan,
    pub build: Plan,
    pub gcloud: Option<Box<dyn Compute + 'a>>,
    pub gate: Option<Gate>,
    /// A run's listing of the project's images, read beside the source image.
    pub listing: Option<Listing>,
}

/// The steps' failures: in a run the first one stops the build, in a dry run each is listed
/// and the plan goes on without what it would have found.
pub struct Unknowns {
    mode: Mode,
    pub lines: Vec<String>,
}

impl Unknowns {
    pub fn new(mode: Mode) -> Unknowns {
        Unknowns {
            mode,
            lines: Vec::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn settle<T>(
        &mut self,
        what: &str,
        result: anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        match result {
            Ok(value) => Ok(Some(value)),
            // Every step settled here comes before the run's first side effect.
            Err(err) if self.mode == Mode::Run => Err(Failure::Stopped.mark(err)),
            Err(err) => {
                self.lines.push(format!("{what}: {err:#}"));
                Ok(None)
            }
        }
    }
}

/// Decides everything up to packer. A dry run's gcloud calls only read.
pub fn gather<'a>(
    sh: &'a Shell,
    host: &HostTree,
    inputs: &Inputs,
    asked: &Asked,
    mode: Mode,
) -> anyhow::Result<Gathered<'a>> {
    let wm = asked.wm;
    let mut unknown = Unknowns::new(mode);
    let version = unknown.settle("packer", packer::check_version(sh, &inputs.template))?;
    // packer's IAP tunnel runs gcloud, and the source image, the reuse lookup and the image
    // summary need it: find out now, not after an hour of VM time.
    let gcloud = unknown.settle("gcloud", compute::connect(sh, &inputs.config.gcp.project))?;
    // Every check that can stop the build comes before its first side effect (a download, a
    // copy into build/, `packer init`), so that a stop changes nothing.
    let playbooks = match mode {
        Mode::Run => {
            check_playbook_before_vm(sh, host, &inputs.template, &[wm])
                .map_err(|err| Failure::Stopped.mark(err))?;
            None
        }
        Mode::DryRun if ansible::installed(sh) => unknown
            .settle("playbook", check_playbooks(sh, host, &inputs.template, wm))?
            .filter(|checked| !checked.is_empty())
            .map(|checked| checked.join(", ")),
        Mode::DryRun => {
            unknown.lines.push(format!(
                "playbook: ansible-playbook is not installed to check it: {}",
                ansible::INSTALL_HINT
            ));
            None
        }
    };
    let gate = read_gate(inputs, host, asked.no_verify, &mut unknown)?;
    // A run lists the project's images for the reuse lookup beside the source image's; a dry
    // run lists them later, only once it knows the input fingerprint.
    let (mut sources, listing) =
        read_cloud(host, inputs, &[wm], gcloud.is_some(), mode == Mode::Run);
    let source = settle_source(inputs, wm, sources.pop().flatten(), &mut unknown)?;

    let (launcher, arrives, newest) = match launcher::choose(host, &inputs.config, &asked.wanted) {
        Ok(chosen) => {
            let planned = chosen.planned();
            let arrives = chosen.decision.changes_build_dir() && mode == Mode::DryRun;
            let launcher = match chosen.decision {
                Decision::Refuse { why } if mode == Mode::DryRun => {
                    unknown.lines.push(format!("launcher: {why}"));
                    planned
                }
                Decision::Refuse { why } => return Err(Failure::Stopped.error(why)),
                decision => {
                    let package = launcher::carry_out(host, decision, mode == Mode::DryRun)?;
                    match mode {
                        Mode::Run => Launcher::Known(package),
                        // Not in build/ yet when it would be fetched or copied.
                        Mode::DryRun => planned,
                    }
                }
            };
            (launcher, arrives, chosen.newest)
        }
        Err(err) if mode == Mode::DryRun => {
            let why = format!("{err:#}");
            unknown.lines.push(format!("launcher: {why}"));
            (Launcher::Unknown { why }, false, None)
        }
        Err(err) => return Err(Failure::Stopped.mark(err)),
    };
    if let (Mode::Run, Some(version)) = (mode, version) {
        ensure_plugins(sh, host, &inputs.template, version)?;
    }
    // After `packer init`, so that the plugins it installed are the ones recorded.
    let tools = packer::tool_labels(sh, version);

    let decided = decide(
        host,
        inputs,
        asked,
        Choices {
            launcher: &launcher,
            arrives,
            source,
            gate,
            tools: &tools,
        },
        gcloud.as_deref(),
        &mut unknown,
    )?;
    let Decided {
        build,
        source,
        gate,
        verification,
        pinned,
        reuse,
    } = decided;
    let shown = BuildPlan {
        wm,
        packer: version.map(packer::version_text),
        playbooks,
        launcher,
        arrives,
        newest,
        build_dir: host.show(&host.build_dir),
        source,
        preview: build.preview(sh, host, ""),
        verification,
        fingerprint: build.fingerprint.clone(),
        reuse,
        pinned,
        images_conf: host.show(&host.images_conf),
        unknown: unknown.lines,
    };
    Ok(Gathered {
        shown,
        build,
        gcloud,
        gate,
        listing,
    })
}

/// One workload manager's build once the launcher is decided: `build` plans one, `release
/// --dry-run` one per workload manager.
pub struct Decided {
    pub build: Plan,
    /// The source image and where it came from, when it could be resolved.
    pub source: Option<(String, String)>,
    pub gate: Option<Gate>,
    /// The verification step as a dry run shows it.
    pub verification: Option<String>,
    /// The image images.conf pins now.
    pub pinned: Option<String>,
    pub reuse: Reuse,
}

/// What a build's plan settles before its first side effect: the launcher (`arrives`: only
/// a real run puts it in build/), the source image and the verification step.
pub struct Choices<'l> {
    pub launcher: &'l Launcher,
    pub arrives: bool,
    pub source: Option<String>,
    pub gate: Option<Gate>,
    /// The versions of packer and its plugins, which the image's labels record.
    pub tools: &'l [(String, String)],
}

/// The verification step of a build, whose checks script must be there before any work starts.
pub fn read_gate(
    inputs: &Inputs,
    host: &HostTree,
    no_verify: bool,
    unknown: &mut Unknowns,
) -> anyhow::Result<Option<Gate>> {
    unknown.settle(
        "verification",
        Gate::read(host, &inputs.config, &inputs.template, no_verify),
    )
}

/// The project's images as the reuse lookup reads them, or why they could not be read.
pub type Listing = anyhow::Result<Vec<Image>>;

/// What a build reads from the cloud before packer: each workload manager's source image
/// (`None` without gcloud) and, when `list`, the project's images for the reuse lookup. Each
/// is a second or more of gcloud and none needs another, so they are read side by side; the
/// caller settles them in the order of `wms`, as one after the other would.
pub fn read_cloud(
    host: &HostTree,
    inputs: &Inputs,
    wms: &[WorkloadManager],
    gcloud: bool,
    list: bool,
) -> (Vec<Option<anyhow::Result<String>>>, Option<Listing>) {
    if !gcloud {
        return (wms.iter().map(|_| None).collect(), None);
    }
    let what = match wms.len() {
        1 => "looking for an image made from the same inputs",
        _ => "looking for images made from the same inputs",
    };
    std::thread::scope(|scope| {
        let listing = list.then(|| {
            session::spawn_scoped(scope, move || -> Listing {
                let sh = session::shell(&host.root)?;
                let listed =
                    compute::connect(&sh, &inputs.config.gcp.project)?.list_images_for(what);
                listed
            })
        });
        let sources: Vec<_> = wms
            .iter()
            .map(|&wm| {
                session::spawn_scoped(scope, move || {
                    resolve_source(&session::shell(&host.root)?, &inputs.config, wm)
                })
            })
            .collect();
        let sources = sources.into_iter().map(|read| Some(joined(read))).collect();
        (sources, listing.map(joined))
    })
}

/// A reading thread's result; its panic is a failure of the read.
fn joined<T>(read: std::thread::ScopedJoinHandle<'_, anyhow::Result<T>>) -> anyhow::Result<T> {
    read.join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("reading the cloud panicked")))
}

/// The exact source image a build starts from: the current image of the workload manager's
/// source family ([`read_cloud`]), said in a run; `None`, with why, where a dry run could not
/// resolve it. Packer is given it where the template declares `source_image`; either way the
/// fingerprint covers it and packer's `Using image:` line confirms it after the build.
pub fn settle_source(
    inputs: &Inputs,
    wm: WorkloadManager,
    read: Option<anyhow::Result<String>>,
    unknown: &mut Unknowns,
) -> anyhow::Result<Option<String>> {
    let source = match read {
        Some(read) => unknown.settle("source image", read)?,
        None => {
            unknown
                .lines
                .push("source image: gcloud is needed to resolve the family".to_string());
            None
        }
    };
    if let (Mode::Run, Some(image)) = (unknown.mode, &source) {
        errln!(
            "source image: {image} ({})",
            source_origin(&inputs.config, wm)
        );
    }
    Ok(source)
}

/// The variables, the verification and reuse or build, once the plan's [`Choices`] are made.
pub fn decide(
    host: &HostTree,
    inputs: &Inputs,
    asked: &Asked,
    choices: Choices<'_>,
    gcloud: Option<&dyn Compute>,
    unknown: &mut Unknowns,
) -> anyhow::Result<Decided> {
    let (wm, mode) = (asked.wm, unknown.mode);
    let Choices {
        launcher,
        arrives,
        source,
        gate,
        tools,
    } = choices;
    let origin = source_origin(&inputs.config, wm);
    let build = Plan::new(host, inputs, wm, launcher, source.as_deref(), asked.debug)?
        .with_on_error(asked.on_error)
        .with_tools(tools);
    let verification = gate.as_ref().map(|gate| {
        gate.preview(
            &inputs.config.gcp.project,
            &format!("det-environments-{wm}-ci-<timestamp>"),
            "",
        )
    });
    if build.fingerprint.is_none() && launcher.known().is_some() && !arrives {
        unknown.lines.push(
            "input fingerprint: it covers the source image, which could not be resolved".into(),
        );
    }
    let pinned = unknown
        .settle("images.conf", read_images_conf(host))?
        .and_then(|conf| conf.pinned(wm).map(str::to_string));
    let reuse = match mode {
        // The run decides reuse in `build_one`, with the same `Plan::verdict`, once it holds
        // the build lock and images.conf is read again.
        Mode::Run => Reuse::NotLookedUp,
        Mode::DryRun => match (gcloud, &build.fingerprint) {
            // The launcher's own line says why a real build would stop.
            (_, None) if launcher.known().is_none() => Reuse::NotLookedUp,
            (Some(_), None) if arrives => Reuse::AfterLauncherArrives,
            (None, _) | (_, None) => {
                unknown.lines.push(
                    "reuse: whether an image made from these inputs exists (that needs gcloud and the input fingerprint)"
                        .into(),
                );
                Reuse::NotLookedUp
            }
            (Some(gcloud), Some(_)) => {
                match unknown.settle(
                    "reuse",
                    build.verdict(gcloud, pinned.as_deref(), asked.force),
                )? {
                    Some(Some(verdict)) => Reuse::Decided {
                        explained: build.explain(&verdict, pinned.as_deref()),
                        verdict,
                    },
                    _ => Reuse::NotLookedUp,
                }
            }
        },
    };
    Ok(Decided {
        build,
        source: source.map(|image| (image, origin)),
        gate,
        verification,
        pinned,
        reuse,
    })
}

/// What a run carries out: the plan, the cloud, the verification step and the listing.
pub struct ForRun<'a> {
    pub build: Plan,
    pub gcloud: Box<dyn Compute + 'a>,
    pub gate: Gate,
    pub listing: Option<Listing>,
}

impl<'a> Gathered<'a> {
    /// What a run needs that a dry run may lack; a run's gathering has failed before either is
    /// missing.
    pub fn for_run(self) -> anyhow::Result<ForRun<'a>> {
        Ok(ForRun {
            gcloud: self.gcloud.context("gcloud is needed for a build")?,
            gate: self
                .gate
                .context("the verification settings are needed for a build")?,
            build: self.build,
            listing: self.listing,
        })
    }
}
