//! A build from plan to pin: the inputs it reads, the plan it decides, packer's run and the pin
//! in images.conf; `build` runs one, `release` one per workload manager.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use xshell::Shell;

use crate::edges::compute::{self, Compute};
use crate::edges::packer::{self, OnError, Outcome, Output};
use crate::host::{
    open_lock_file, read_bounded, remove_if_there, write_atomically, write_state_file, HostTree,
};
use crate::model::config::Config;
use crate::model::image::Image;
use crate::model::images_conf::Change;
use crate::model::launcher_choice::Launcher;
use crate::model::provenance::{self, Provenance, Verdict};
use crate::model::records::{self, Progress, Record};
use crate::model::template::Template;
use crate::model::time::format_duration;
use crate::model::variables::{self, Extra, ExtraValues, Value, Variables};
use crate::model::verification::Verified;
use crate::model::{is_gce_image_name, manifest, WorkloadManager};
use crate::steps::build_plan::Listing;
use crate::steps::host_files::{load_config, read_images_conf, read_template};
use crate::steps::verify::{self, Gate};
use crate::steps::{build_lock, fingerprint};
use crate::term::exit::Failure;
use crate::term::{is_interactive, is_interrupted, signal_name, Interrupted, Watch};

/// The current image of the workload manager's source family. The build then names it
/// exactly, so that the image and its fingerprint say what was really used.
pub fn resolve_source(sh: &Shell, config: &Config, wm: WorkloadManager) -> anyhow::Result<String> {
    let source = config.source_image(wm);
    let image = compute::connect(sh, &source.project)?
        .image_from_family(&source.family)
        .with_context(|| {
            format!(
                "resolving the source image family {} in project {} (`{wm}.source_image_family` and \
                 `{wm}.source_image_project` in slurm-image.toml)",
                source.family, source.project
            )
        })?;
    if !is_gce_image_name(&image.name) {
        bail!(
            "the family {} in project {} names {:?}, which is not a GCE image name",
            source.family,
            source.project,
            image.name
        );
    }
    Ok(image.name)
}

/// Where a source image came from, for the line that shows it.
pub fn source_origin(config: &Config, wm: WorkloadManager) -> String {
    let source = config.source_image(wm);
    format!(
        "the current image of family {} in project {}",
        source.family, source.project
    )
}

/// What a failed look for an image to reuse was doing, and where to look next.
const REUSE_LOOKUP: &str =
    "looking for an image made from the same inputs before spending VM time \
     (`cargo xtask slurm-image doctor` checks gcloud's access)";

/// A manifest holds a few builds of one run; one this large is not packer's.
const MANIFEST_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// What every build reads before it starts: the config, the template and images.conf, each
/// checked so that a mistake stops the build before any VM does.
pub struct Inputs {
    pub config: Config,
    pub template: Template,
}

impl Inputs {
    pub fn read(host: &HostTree) -> anyhow::Result<Inputs> {
        let config = load_config(host)?;
        // A broken images.conf is found now, not after a long packer run.
        read_images_conf(host)?;
        let template = read_template(host)?;
        let loaded = fingerprint::loaded(host)?;
        if let Some(refusal) = loaded.refusal(&host.show(&host.packer_dir)) {
            bail!("{refusal}");
        }
        if !loaded.more_templates.is_empty() {
            errln!(
                "note: packer loads {} besides main.pkr.hcl (`make build` read main.pkr.hcl alone); the tool \
                 reads them as part of the template, and the fingerprint covers them",
                loaded.more_templates.join(", ")
            );
        }
        variables::check_contract(&template)
            .with_context(|| format!("checking the template in {}", host.show(&host.packer_dir)))?;
        if let Some(others) = template.other_projects(&config.gcp.project) {
            bail!(
                "the template builds in project {others} but {} says gcp.project = {:?}: images would be built where \
                 images, prune and orphans do not look; make them agree",
                host.show(&host.config_file),
                config.gcp.project
            );
        }
        Ok(Inputs { config, template })
    }
}

/// Runs `packer init` when the template's plugins are not all installed, saying so.
pub fn ensure_plugins(
    sh: &Shell,
    host: &HostTree,
    template: &Template,
    version: crate::model::Version,
) -> anyhow::Result<()> {
    let missing = packer::missing_plugins(sh, template, version)?;
    if missing.is_empty() {
        return Ok(());
    }
    errln!(
        "packer plugins: installing or checking {} (`packer init .`)",
        missing.join(", ")
    );
    let _dir = sh.push_dir(&host.packer_dir);
    let init = packer::init(sh);
    // Echoed here, not by xshell, whose echo panics when stderr is gone.
    errln!("$ {init}");
    let failed = "`packer init .` failed: the template's plugins are not installed";
    crate::output::run_child(init.quiet()).context(failed)
}

/// One build, decided: the files it uses and the variables it passes.
pub struct Plan {
    pub wm: WorkloadManager,
    /// Unknown only in a dry run that could not decide it; such a plan is shown, never run.
    pub launcher: Launcher,
    pub variables: Variables,
    pub var_file: PathBuf,
    /// The launcher package's file name in build/.
    pub launcher_file: String,
    /// The folder packer runs in: a copy of the template's inputs, this build's alone.
    pub staging: PathBuf,
    /// Where the manifest post-processor writes: `build/manifest.json` in the staging copy.
    pub manifest: PathBuf,
    pub log_file: PathBuf,
    /// What the image is made from; `None` when the launcher package is unknown or not yet
    /// there to hash, or the source image is unknown (a dry run).
    pub provenance: Option<Provenance>,
    /// The input fingerprint of what the image is made from, when known.
    pub fingerprint: Option<String>,
    /// The labels the image gets: the workload manager, and what it is made from.
    pub labels: Vec<(String, String)>,
    /// The versions of packer and its plugins among `labels` ([`Plan::with_tools`]).
    pub tools: Vec<(String, String)>,
    /// Whether the template puts [`Plan::labels`] on the image itself (it declares
    /// `image_labels`); otherwise the tool adds them once packer has built it.
    pub labelled_by_template: bool,
    pub debug: bool,
    /// What packer does with its VM when the build fails; `None` leaves it to packer.
    pub on_error: Option<OnError>,
    /// Where the template names its images, for a pin that is refused.
    pub image_name_at: Option<String>,
}

impl Plan {
    /// `source_image` is the resolved source image, when the template takes one.
    pub fn new(
        host: &HostTree,
        inputs: &Inputs,
        wm: WorkloadManager,
        launcher: &Launcher,
        source_image: Option<&str>,
        debug: bool,
    ) -> anyhow::Result<Plan> {
        let deb_name = launcher.known().map_or("", |package| &package.file_name);
        let mut contract = variables::contract(&inputs.config, wm, deb_name);
        if let Launcher::Unknown { why } = launcher {
            contract.mark_unknown("launcher_deb_name", why);
        }
        // The fingerprint covers the launcher package and the source image: with either
        // unknown (a dry run without network, `check`), there is no fingerprint.
        let provenance = match (launcher.known(), source_image) {
            (Some(package), Some(_)) => fingerprint::provenance(
                host,
                &inputs.template,
                &contract,
                wm,
                package,
                source_image,
            )?,
            _ => None,
        };
        let staging = host.staging_dir(wm);
        let manifest = staging.join("build").join("manifest.json");
        let labels = match &provenance {
            Some(provenance) => provenance.labels(),
            None => vec![(
                provenance::WORKLOAD_MANAGER.to_string(),
                wm.key().to_string(),
            )],
        };
        let extras = ExtraValues {
            image_labels: labels.clone(),
            source_image: source_image.map(str::to_string),
        };
        let (variables, off) = variables::for_template(contract, &inputs.template, &extras);
        Ok(Plan {
            wm,
            launcher: launcher.clone(),
            variables,
            labelled_by_template: !off.contains(&Extra::ImageLabels),
            var_file: host.variables_file(wm),
            launcher_file: deb_name.to_string(),
            staging,
            manifest,
            log_file: host.log_file(wm),
            fingerprint: provenance.as_ref().map(Provenance::fingerprint),
            provenance,
            labels,
            tools: Vec::new(),
            debug,
            on_error: None,
            image_name_at: inputs.template.image_name.clone(),
        })
    }

    /// The plan with the tools that will make the image recorded among its labels (packer's and
    /// its plugins' versions, [`packer::tool_labels`]); not part of the fingerprint. Only a plan
    /// whose inputs are known labels its image.
    pub fn with_tools(mut self, tools: &[(String, String)]) -> Plan {
        if self.provenance.is_none() {
            return self;
        }
        self.tools = tools.to_vec();
        self.labels.extend(tools.iter().cloned());
        for (name, value) in &mut self.variables.0 {
            if let (&"image_labels", Value::Map(labels)) = (&*name, value) {
                labels.extend(tools.iter().cloned());
            }
        }
        self
    }

    /// The plan with packer told what to do with its VM when the build fails (`--on-error`).
    pub fn with_on_error(self, on_error: Option<OnError>) -> Plan {
        Plan { on_error, ..self }
    }

    /// Whether an image made from the same inputs exists, and if not, why a build is needed:
    /// one listing of the project's images, the same a build makes, decided by
    /// [`Plan::verdict_among`]. `None` when the fingerprint is unknown: then nothing can be
    /// reused or compared.
    pub fn verdict(
        &self,
        gcloud: &dyn Compute,
        pinned: Option<&str>,
        force: bool,
    ) -> anyhow::Result<Option<Verdict>> {
        if self.fingerprint.is_none() {
            return Ok(None);
        }
        let listed = gcloud
            .list_images_for("looking for an image made from the same inputs")
            .context(REUSE_LOOKUP)?;
        Ok(self.verdict_among(&listed, pinned, force))
    }

    /// Reuse or build, decided from a listing of the project's images by
    /// [`provenance::verdict`], whose [`provenance::reused_image`] `images` marks too.
    pub fn verdict_among(
        &self,
        images: &[Image],
        pinned: Option<&str>,
        force: bool,
    ) -> Option<Verdict> {
        self.fingerprint.as_ref()?;
        let labels: BTreeMap<String, String> = self.labels.iter().cloned().collect();
        Some(provenance::verdict(images, &labels, self.wm, pinned, force))
    }

    /// The line that says what a verdict means: reuse, or why a build is needed.
    pub fn explain(&self, verdict: &Verdict, pinned: Option<&str>) -> String {
        let fingerprint = self.fingerprint.as_deref().unwrap_or("unknown");
        match verdict {
            Verdict::Reuse { image } => format!(
                "reusing {image}: it was made from these same inputs (input fingerprint {fingerprint}), so packer \
                 does not run; --force builds anyway"
            ),
            Verdict::Build {
                reasons,
                same_inputs,
            } => {
                let why = match pinned {
                    Some(pinned) => format!(
                        "against {pinned}, which images.conf pins: {}",
                        reasons.join("; ")
                    ),
                    None => reasons.join("; "),
                };
                match same_inputs {
                    Some(image) => format!(
                        "building because of --force, although {image} was made from these same inputs ({why})"
                    ),
                    None => format!("building: {why}"),
                }
            }
        }
    }

    fn command<'a>(&self, sh: &'a Shell) -> xshell::Cmd<'a> {
        packer::build(
            sh,
            &self.var_file,
            &self.log_file,
            self.debug,
            self.on_error,
        )
    }

    /// The command as it runs, environment included.
    pub fn command_line(&self, sh: &Shell, host: &HostTree) -> String {
        packer::shown_build(&self.command(sh), &self.log_file, self.debug, &host.root)
    }

    /// What a dry run shows of the build: the variables file as it would be written, then the
    /// packer command; each heading after `# ` and `tag` (`[pbs] ` in a release).
    pub fn preview(&self, sh: &Shell, host: &HostTree, tag: &str) -> String {
        format!(
            "# {tag}{} would contain:\n{}\n# {tag}and run, in {} (a copy of {} with the launcher package alone in build/):\n{}",
            host.show(&self.var_file),
            self.variables.render("build"),
            host.show(&self.staging),
            host.show(&host.packer_dir),
            self.command_line(sh, host)
        )
    }

    /// Writes the variables file, runs packer in this build's staging copy and reads the new
    /// image from its manifest.
    pub fn run(&self, sh: &Shell, host: &HostTree, output: Output<'_>) -> anyhow::Result<Built> {
        if let Launcher::Unknown { why } = &self.launcher {
            bail!("the launcher package is unknown ({why}): a build needs one in build/");
        }
        host.state_dir_ready()?;
        write_state_file(&self.var_file, self.variables.render("build").as_bytes())?;
        // packer writes its log through a link it finds there: the old log goes first.
        remove_if_there(&self.log_file)?;
        stage(host, &self.staging, &self.launcher_file)?;

        let _dir = sh.push_dir(&self.staging);
        let shown = self.command_line(sh, host);
        let started = std::time::Instant::now();
        let outcome = packer::run_to_end(
            self.command(sh),
            &shown,
            self.debug && is_interactive(),
            build_lock::for_packer(host, self.wm),
            |pid| build_lock::note_packer(host, self.wm, pid),
            output,
        )?;
        let took = started.elapsed().as_secs();
        output.say(&format!("packer: {}", format_duration(took)));
        crate::output::record(&Record::Progress(Progress {
            workload_manager: Some(self.wm),
            phase: "packer",
            seconds: took,
        }));
        let interrupted = match outcome {
            Outcome::Succeeded => None,
            // Packer finished before the signal could stop it: the image exists, so it is
            // pinned before the interrupt is honoured.
            Outcome::Interrupted {
                signal,
                code: Some(0),
            } => {
                errln!(
                    "{} arrived as packer finished: pinning the image it built before stopping",
                    signal_name(signal)
                );
                Some(signal)
            }
            Outcome::Failed(code) => {
                return Err(Failure::Build.error(format!(
                    "packer build failed (exit {}): no new {} image; its line in images.conf is unchanged; packer's log is {}{}",
                    code.map_or("by signal".to_string(), |c| c.to_string()),
                    self.wm,
                    host.show(&self.log_file),
                    self.kept_vm()
                )))
            }
            Outcome::Interrupted { signal, .. } => {
                return Err(Interrupted::error(
                    signal,
                    format!(
                        "build interrupted by {}: packer was left to delete its VM; its line in images.conf is unchanged \
                         (`cargo xtask slurm-image orphans` lists packer VMs that were left behind)",
                        signal_name(signal)
                    ),
                ))
            }
        };
        if !self.manifest.exists() {
            return Err(Failure::Build.error(format!(
                "packer succeeded but wrote no manifest at {}: the template's manifest post-processor must write \
                 `build/manifest.json` (`output = \"build/manifest.json\"`), as the old script read it",
                host.show(&self.manifest)
            )));
        }
        let json = read_bounded(&self.manifest, MANIFEST_MAX_BYTES)
            .with_context(|| format!("reading packer's manifest {}", host.show(&self.manifest)))?;
        let image = manifest::latest_image(&json)
            .with_context(|| format!("reading {}", host.show(&self.manifest)))?;
        output.print(&format!("packer built {image}"));
        // packer names the image it started from in its log; `-debug` logs to the terminal.
        let log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        Ok(Built {
            image,
            source_used: packer::source_image_used(&log),
            interrupted,
        })
    }

    /// What a failed build says of its VM when packer was told to keep it: its name, when
    /// packer's log names it, and how to find and delete it.
    fn kept_vm(&self) -> String {
        if self.on_error != Some(OnError::Abort) {
            return String::new();
        }
        let log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let which = match packer::vm_kept(&log) {
            Some(name) => format!("its VM {name}"),
            None => "its VM (packer's log does not name it)".to_string(),
        };
        format!(
            "; packer kept {which} for debugging (--on-error=abort): it runs, and costs, until deleted; \
             `cargo xtask slurm-image orphans` finds it and `orphans --delete` deletes it"
        )
    }

    /// The labels the new image should carry, given the source image packer says it used,
    /// and whether they differ from those the template was given. A source that differs from
    /// the one resolved before the build (the family moved meanwhile) is said, and labelled.
    pub fn labels_for(
        &self,
        source_used: Option<&str>,
        output: Output<'_>,
    ) -> (Vec<(String, String)>, bool) {
        let Some(provenance) = &self.provenance else {
            return (self.labels.clone(), false);
        };
        let resolved = provenance.source_image.as_deref();
        match source_used {
            Some(used) if Some(used) != resolved => {
                output.say(&format!(
                    "packer started from {used}, not {}, the family's image when the build began: the family \
                     moved during the build; the image's labels name {used}",
                    resolved.unwrap_or("the resolved image")
                ));
                let confirmed = Provenance {
                    source_image: Some(used.to_string()),
                    ..provenance.clone()
                };
                let mut labels = confirmed.labels();
                labels.extend(self.tools.iter().cloned());
                (labels, true)
            }
            Some(_) => (self.labels.clone(), false),
            None => {
                output.say(&format!(
                    "packer's log does not say which source image it used (no `Using image:` line): the labels \
                     name {}, the family's image when the build began",
                    resolved.unwrap_or("no source image")
                ));
                (self.labels.clone(), false)
            }
        }
    }
}

/// Fills `staging` afresh with copies of the template folder's inputs and a `build/` holding
/// only the launcher package, as the old `build/` held it. The package is copied, never hard
/// linked: a template or provisioner that wrote or chmodded the staged file would otherwise
/// change the user's verified package too.
fn stage(host: &HostTree, staging: &Path, launcher_file: &str) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(staging) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("removing the old {}", staging.display()))
        }
        _ => {}
    }
    for file in fingerprint::packer_inputs(host)? {
        let rel = file.strip_prefix(&host.packer_dir).unwrap_or(&file);
        let to = staging.join(rel);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::copy(&file, &to)
            .with_context(|| format!("copying {} to {}", host.show(&file), host.show(&to)))?;
    }
    let build = staging.join("build");
    std::fs::create_dir_all(&build).with_context(|| format!("creating {}", build.display()))?;
    let (from, to) = (
        host.build_dir.join(launcher_file),
        build.join(launcher_file),
    );
    std::fs::copy(&from, &to)
        .with_context(|| format!("copying {} to {}", host.show(&from), host.show(&to)))?;
    Ok(())
}

/// What a finished packer run made.
pub struct Built {
    pub image: String,
    /// The source image packer's log says it started from.
    pub source_used: Option<String>,
    /// A signal that arrived as packer finished; the caller stops after pinning.
    pub interrupted: Option<i32>,
}

/// One workload manager's build, from its plan to its pin: `build` runs one, `release` one
/// per workload manager, side by side. Whatever decides between building and reusing an image
/// belongs here, so that each workload manager of a release decides on its own.
#[allow(clippy::too_many_arguments)] // Each is the build's own; a struct would only rename them.
pub fn build_one(
    sh: &Shell,
    host: &HostTree,
    plan: &Plan,
    gcloud: &dyn Compute,
    listed: Option<Listing>,
    force: bool,
    gate: &Gate,
    output: Output<'_>,
) -> anyhow::Result<Pinned> {
    let pinned = read_images_conf(host)?.pinned(plan.wm).map(str::to_string);
    // One listing of the whole project, made while the caller holds the build lock, decides
    // reuse, gives the labels of the images it names, and, when nothing is built or booted,
    // is what the prune hint after the pin counts. The caller's (`listed`) was read beside the
    // source image; a release's builds side by side share one.
    let images = match (&plan.fingerprint, listed) {
        (Some(_), Some(listed)) => Some(listed.context(REUSE_LOOKUP)?),
        (Some(_), None) => Some(
            gcloud
                .list_images_for("looking for an image made from the same inputs")
                .context(REUSE_LOOKUP)?,
        ),
        (None, _) => None,
    };
    let verdict = images
        .as_deref()
        .and_then(|images| plan.verdict_among(images, pinned.as_deref(), force));
    if let Some(verdict) = &verdict {
        output.print(&plan.explain(verdict, pinned.as_deref()));
    }
    if let Some(Verdict::Reuse { image }) = verdict {
        let new = verify::New {
            image: &image,
            reused: true,
            interrupted: None,
            listed: images.as_deref(),
        };
        let checked =
            verify::before_pin(host, gcloud, gate, plan, &new, pinned.as_deref(), output)?;
        let change =
            record(host, plan.wm, &image, output).map_err(|err| unpinned(err, plan, &image))?;
        return Ok(Pinned {
            image,
            change,
            reused: true,
            interrupted: None,
            inside: checked.inside,
            verified: checked.verified,
            // A verification relabelled the image and took minutes: the hint lists afresh.
            images: images.filter(|_| !checked.booted),
        });
    }
    let built = plan.run(sh, host, output)?;
    // An image the pin would refuse (another workload manager's, another team's) is refused
    // now, before the tool labels or boots it: neither is this tool's to touch.
    let refused = |err: anyhow::Error| {
        err.context(format!(
            "not pinning {}, the latest build in {} (the template names images in {})",
            built.image,
            host.show(&plan.manifest),
            plan.image_name_at
                .as_deref()
                .unwrap_or("no `image_name` it could read")
        ))
    };
    read_images_conf(host)?
        .pin(plan.wm, &built.image)
        .map_err(refused)?;
    let (labels, changed) = plan.labels_for(built.source_used.as_deref(), output);
    if !plan.labelled_by_template || changed {
        label(gcloud, &built.image, &labels, output);
    }
    let new = verify::New {
        image: &built.image,
        reused: false,
        interrupted: built.interrupted,
        listed: None,
    };
    let checked = verify::before_pin(host, gcloud, gate, plan, &new, pinned.as_deref(), output)?;
    let change = record(host, plan.wm, &built.image, output).map_err(|err| {
        if is_interrupted(&err) {
            unpinned(err, plan, &built.image)
        } else {
            refused(err)
        }
    })?;
    Ok(Pinned {
        image: built.image,
        change,
        reused: false,
        interrupted: built.interrupted,
        inside: checked.inside,
        verified: checked.verified,
        // Listed before packer ran, which may take an hour: the hint lists afresh.
        images: None,
    })
}

/// Puts the labels on a new image; a failure is a warning naming the command that retries,
/// since the image itself is good and is still pinned.
fn label(gcloud: &dyn Compute, image: &str, labels: &[(String, String)], output: Output<'_>) {
    match gcloud.add_image_labels(image, labels) {
        Ok(()) => output.say(&format!(
            "labelled {image} with what it is made from ({} labels)",
            labels.len()
        )),
        Err(err) => output.say(&format!(
            "warning: {image} was built but not labelled ({err:#}), so no later build can reuse it; \
             it is pinned all the same. To label it: {}",
            crate::edges::gcloud::add_labels_command(gcloud.project(), image, labels)
        )),
    }
}

/// A pin that a signal stopped, said with what became of the image: it exists, and the next
/// run finds it by its input fingerprint, which its labels carry.
fn unpinned(err: anyhow::Error, plan: &Plan, image: &str) -> anyhow::Error {
    if !is_interrupted(&err) {
        return err;
    }
    let wm = plan.wm;
    err.context(format!(
        "{image} is built but not pinned for {wm}: the next `cargo xtask slurm-image build --wm {wm}` reuses \
         it instead of building, since it carries the same input fingerprint"
    ))
}

/// An image built (or reused) and pinned in images.conf.
pub struct Pinned {
    pub image: String,
    pub change: Change,
    /// No packer run: an image made from the same inputs exists.
    pub reused: bool,
    /// A signal that arrived as packer finished; the caller stops after the pin.
    pub interrupted: Option<i32>,
    /// What changed inside the image against the one it replaced, from their bills of
    /// materials: `slurm 23.11.4 -> 23.11.6`.
    pub inside: Option<String>,
    /// How the image was verified before its pin.
    pub verified: Verified,
    /// The project's images as they stand after the pin, when the listing that decided reuse
    /// still shows them (nothing was built), so that the prune hint need not list them again.
    pub images: Option<Vec<Image>>,
}

impl Pinned {
    /// The image as a `result` record names it.
    pub fn record(&self, wm: WorkloadManager) -> records::Image {
        records::Image {
            workload_manager: wm,
            image: self.image.clone(),
            how: if self.reused { "reused" } else { "built" },
            verification: (&self.verified).into(),
            pinned: true,
            images_conf: Some(records::change_word(&self.change)),
        }
    }
}

/// How often a lock wait looks again at the lock and at the signals.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Takes the lock file at `path`, first saying `why` when another process holds it. The lock
/// goes with the returned file, so a killed holder never leaves it taken. The wait polls
/// rather than blocks: signal-hook's handlers restart a blocking `lock()` after Ctrl-C, and a
/// wait for another build may be long. A stopping signal ends it with the error of an
/// interrupted build, saying it came while `waiting`.
fn wait_for_lock(path: &Path, why: &str, waiting: &str) -> anyhow::Result<std::fs::File> {
    let lock = open_lock_file(path)?;
    // Taken only once the wait begins: a signal while the lock is free ends the tool as usual.
    let mut watch: Option<Watch> = None;
    loop {
        let taken = match lock.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("locking {}", path.display()))
            }
        };
        // A signal that came during the wait is honoured even if the lock came with it.
        if let Some(signal) = watch.as_ref().and_then(Watch::signal) {
            return Err(Interrupted::error(
                signal,
                format!("{} arrived while {waiting}", signal_name(signal)),
            ));
        }
        if taken {
            return Ok(lock);
        }
        if watch.is_none() {
            // Watching before saying so: whoever reads the line may signal at once.
            watch = Some(Watch::start()?);
            errln!("{why}");
        }
        std::thread::sleep(LOCK_POLL);
    }
}

/// Pins `image` for `wm` in images.conf. A lock makes this the one writer at a time, so two
/// builds finishing together both land; the write itself is atomic. The result is said through
/// `output`, so in a release it carries the `[wm] ` prefix.
pub fn record(
    host: &HostTree,
    wm: WorkloadManager,
    image: &str,
    output: Output<'_>,
) -> anyhow::Result<Change> {
    let shown = host.show(&host.images_conf);
    let _lock = wait_for_lock(
        &host.state_dir_ready()?.join("images.conf.lock"),
        &format!("waiting for another build to finish writing {shown}"),
        &format!("waiting for another build to finish writing {shown}, which is unchanged"),
    )?;
    let (text, change) = read_images_conf(host)?.pin(wm, image)?;
    match &change {
        Change::Unchanged => output.print(&format!("{shown} already pins {image} for {wm}")),
        Change::Replaced { old, new } => {
            write_atomically(&host.images_conf, text.as_bytes())?;
            output.print(&format!("{shown}: {wm}: {old} -> {new}"));
        }
        Change::Added { new } => {
            write_atomically(&host.images_conf, text.as_bytes())?;
            output.print(&format!("{shown}: added the missing line `{wm}: {new}`"));
        }
    }
    Ok(change)
}
