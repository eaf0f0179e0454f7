//! A build from plan to pin: the inputs it reads, the plan it decides, packer's run and the pin
//! in images.conf; `build` runs one, `release` one per workload manager.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use xshell::Shell;

use crate::edges::gcloud::Gcloud;
use crate::edges::packer::{self, Outcome, Output};
use crate::host::{write_atomically, HostTree};
use crate::model::config::Config;
use crate::model::images_conf::Change;
use crate::model::launcher_version::LauncherPackage;
use crate::model::provenance::{self, Listed, Provenance, Verdict};
use crate::model::template::Template;
use crate::model::time::parse_rfc3339;
use crate::model::variables::{self, Extra, ExtraValues, Variables};
use crate::model::{is_gce_image_name, manifest, WorkloadManager};
use crate::steps::host_files::{load_config, read_images_conf, read_template};
use crate::steps::inputs;
use crate::steps::verify::{self, Gate};
use crate::term::{is_interactive, signal_name, Interrupted};

/// The current image of the workload manager's source family. The build then names it
/// exactly, so that the image and its fingerprint say what was really used.
pub fn resolve_source(sh: &Shell, config: &Config, wm: WorkloadManager) -> anyhow::Result<String> {
    let source = config.source_image(wm);
    let image = Gcloud::new(sh, &source.project)?
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

/// The exact source image a build starts from, resolved from the family and shown; `None`
/// when the template does not declare `source_image` (packer then takes the family's newest).
pub fn source_for(
    sh: &Shell,
    inputs: &Inputs,
    wm: WorkloadManager,
) -> anyhow::Result<Option<String>> {
    if !inputs.template.declares(Extra::SourceImage.variable()) {
        return Ok(None);
    }
    let image = resolve_source(sh, &inputs.config, wm)?;
    eprintln!(
        "source image: {image} ({})",
        source_origin(&inputs.config, wm)
    );
    Ok(Some(image))
}

/// Where a source image came from, for the line that shows it.
pub fn source_origin(config: &Config, wm: WorkloadManager) -> String {
    let source = config.source_image(wm);
    format!(
        "the current image of family {} in project {}",
        source.family, source.project
    )
}

/// Stands in for the launcher's name in a dry run that could not find one.
pub const UNKNOWN_LAUNCHER: &str = "hpe-hpc-launcher_0.0.0-0_amd64.deb";

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

    /// Whether every build writes its manifest to the template's one `build/manifest.json`
    /// (the template lacks `manifest_path`), so that builds must take turns.
    pub fn shared_manifest(&self) -> bool {
        !self.template.declares(Extra::ManifestPath.variable())
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
    eprintln!(
        "packer plugins: installing or checking {} (`packer init .`)",
        missing.join(", ")
    );
    let _dir = sh.push_dir(&host.packer_dir);
    packer::init(sh)
        .run()
        .context("`packer init .` failed: the template's plugins are not installed")?;
    Ok(())
}

/// One build, decided: the files it uses and the variables it passes.
pub struct Plan {
    pub wm: WorkloadManager,
    pub variables: Variables,
    /// The template's optional declarations it lacks.
    pub off: Vec<Extra>,
    pub var_file: PathBuf,
    /// Where the manifest post-processor writes.
    pub manifest: PathBuf,
    /// Whether that is the template's one `build/manifest.json`, which builds take turns on.
    pub shared_manifest: bool,
    pub log_file: PathBuf,
    /// The input fingerprint of what the image is made from; `None` when the launcher
    /// package is not there to hash or the source image is unknown (a dry run).
    pub fingerprint: Option<String>,
    /// The labels the image gets: the workload manager, and what it is made from.
    pub labels: Vec<(String, String)>,
    /// Whether the template puts [`Plan::labels`] on the image (it declares `image_labels`):
    /// only then can images be reused and rebuilds explained.
    pub labelled: bool,
    pub debug: bool,
}

impl Plan {
    /// `source_image` is the resolved source image, when the template takes one.
    pub fn new(
        host: &HostTree,
        inputs: &Inputs,
        wm: WorkloadManager,
        package: &LauncherPackage,
        source_image: Option<&str>,
        debug: bool,
    ) -> anyhow::Result<Plan> {
        let contract = variables::contract(&inputs.config, wm, &package.file_name);
        // Where the template takes a source image, the fingerprint covers it: unresolved (a
        // dry run without network, `check`), there is no fingerprint.
        let unresolved =
            inputs.template.declares(Extra::SourceImage.variable()) && source_image.is_none();
        let provenance = if unresolved {
            None
        } else {
            inputs::provenance(host, &inputs.template, &contract, wm, package, source_image)?
        };
        let shared_manifest = inputs.shared_manifest();
        let manifest = if shared_manifest {
            host.shared_manifest_file()
        } else {
            host.manifest_file(wm)
        };
        let labels = match &provenance {
            Some(provenance) => provenance.labels(),
            None => vec![(
                provenance::WORKLOAD_MANAGER.to_string(),
                wm.key().to_string(),
            )],
        };
        let extras = ExtraValues {
            manifest_path: manifest.display().to_string(),
            image_labels: labels.clone(),
            source_image: source_image.map(str::to_string),
        };
        let (variables, off) = variables::for_template(contract, &inputs.template, &extras);
        Ok(Plan {
            wm,
            variables,
            labelled: !off.contains(&Extra::ImageLabels),
            off,
            var_file: host.variables_file(wm),
            manifest,
            shared_manifest,
            log_file: host.log_file(wm),
            fingerprint: provenance.as_ref().map(Provenance::fingerprint),
            labels,
            debug,
        })
    }

    /// Whether an image made from the same inputs exists, and if not, why a build is needed
    /// (one gcloud call, which only reads). `None` when the template puts no labels on its
    /// images or the fingerprint is unknown: then nothing can be reused or compared.
    pub fn verdict(
        &self,
        gcloud: &Gcloud,
        pinned: Option<&str>,
        force: bool,
    ) -> anyhow::Result<Option<Verdict>> {
        let (Some(fingerprint), true) = (&self.fingerprint, self.labelled) else {
            return Ok(None);
        };
        let listed = gcloud
            .images_for_reuse(fingerprint, pinned)
            .context(
                "looking for an image made from the same inputs before spending VM time \
                 (`cargo xtask slurm-image doctor` checks gcloud's access)",
            )?
            .into_iter()
            .map(|image| Listed {
                created: parse_rfc3339(&image.creation_timestamp).unwrap_or(0),
                name: image.name,
                status: image.status,
                labels: image.labels,
            })
            .collect::<Vec<_>>();
        let labels: BTreeMap<String, String> = self.labels.iter().cloned().collect();
        Ok(Some(provenance::verdict(
            &listed, &labels, self.wm, pinned, force,
        )))
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

    /// Says, for each optional declaration the template lacks, what that costs and the fix.
    pub fn explain_off(&self, host: &HostTree) {
        for extra in &self.off {
            eprintln!(
                "note: the template does not declare `{extra}`: {}; to add it: {} (in {})",
                extra.cost(),
                extra.declaration(),
                host.show(&host.packer_dir)
            );
        }
    }

    fn command<'a>(&self, sh: &'a Shell) -> xshell::Cmd<'a> {
        packer::build(sh, &self.var_file, &self.log_file, self.debug)
    }

    /// The command as it runs, environment included.
    pub fn command_line(&self, sh: &Shell, host: &HostTree) -> String {
        packer::shown_build(&self.command(sh), &self.log_file, self.debug, &host.root)
    }

    /// What a dry run shows of the build: the variables file as it would be written, then the
    /// packer command; each heading after `# ` and `tag` (`[pbs] ` in a release).
    pub fn preview(&self, sh: &Shell, host: &HostTree, tag: &str) -> String {
        format!(
            "# {tag}{} would contain:\n{}\n# {tag}and run, in {}:\n{}",
            host.show(&self.var_file),
            self.variables.render("build"),
            host.show(&host.packer_dir),
            self.command_line(sh, host)
        )
    }

    /// Writes the variables file, runs packer and reads the new image from its manifest.
    pub fn run(&self, sh: &Shell, host: &HostTree, output: Output<'_>) -> anyhow::Result<Built> {
        for dir in [&host.state_dir, &host.build_dir] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        write_atomically(&self.var_file, self.variables.render("build").as_bytes())?;
        let _turn = if self.shared_manifest {
            Some(take_turn(host)?)
        } else {
            None
        };
        // A manifest left by an earlier run would be appended to, and a template that uploads
        // build/ would ship it; starting afresh keeps the file to this run.
        remove_if_there(&self.manifest)?;

        let _dir = sh.push_dir(&host.packer_dir);
        let shown = self.command_line(sh, host);
        let outcome = packer::run_to_end(
            self.command(sh),
            &shown,
            self.debug && is_interactive(),
            output,
        )?;
        let interrupted = match outcome {
            Outcome::Succeeded => None,
            // Packer finished before the signal could stop it: the image exists, so it is
            // pinned before the interrupt is honoured.
            Outcome::Interrupted {
                signal,
                code: Some(0),
            } => {
                eprintln!(
                    "{} arrived as packer finished: pinning the image it built before stopping",
                    signal_name(signal)
                );
                Some(signal)
            }
            Outcome::Failed(code) => bail!(
                "packer build failed (exit {}): no new {} image; its line in images.conf is unchanged; packer's log is {}",
                code.map_or("by signal".to_string(), |c| c.to_string()),
                self.wm,
                host.show(&self.log_file)
            ),
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
        let json = std::fs::read_to_string(&self.manifest).with_context(|| {
            format!(
                "packer succeeded but wrote no manifest at {}: does the template's manifest post-processor write there{}?",
                host.show(&self.manifest),
                if self.shared_manifest { "" } else { " (`output = var.manifest_path`)" }
            )
        })?;
        let image = manifest::latest_image(&json)
            .with_context(|| format!("reading {}", host.show(&self.manifest)))?;
        if self.shared_manifest {
            // As the old script did: the next build starts without it, and no upload ships it.
            remove_if_there(&self.manifest)?;
        }
        println!("packer built {image}");
        Ok(Built { image, interrupted })
    }
}

/// What a finished packer run made.
pub struct Built {
    pub image: String,
    /// A signal that arrived as packer finished; the caller stops after pinning.
    pub interrupted: Option<i32>,
}

/// One workload manager's build, from its plan to its pin: `build` runs one, `release` one
/// per workload manager, side by side. Whatever decides between building and reusing an image
/// belongs here, so that each workload manager of a release decides on its own.
pub fn build_one(
    sh: &Shell,
    host: &HostTree,
    plan: &Plan,
    gcloud: &Gcloud,
    force: bool,
    gate: &Gate,
    output: Output<'_>,
) -> anyhow::Result<Pinned> {
    let pinned = read_images_conf(host)?.pinned(plan.wm).map(str::to_string);
    let verdict = plan.verdict(gcloud, pinned.as_deref(), force)?;
    if let Some(verdict) = &verdict {
        output.print(&plan.explain(verdict, pinned.as_deref()));
    }
    if let Some(Verdict::Reuse { image }) = verdict {
        let new = verify::New {
            image: &image,
            reused: true,
            interrupted: None,
        };
        let inside = verify::before_pin(host, gcloud, gate, plan, &new, pinned.as_deref(), output)?;
        let change = record(host, plan.wm, &image)?;
        return Ok(Pinned {
            image,
            change,
            reused: true,
            interrupted: None,
            inside,
        });
    }
    let built = plan.run(sh, host, output)?;
    let new = verify::New {
        image: &built.image,
        reused: false,
        interrupted: built.interrupted,
    };
    let inside = verify::before_pin(host, gcloud, gate, plan, &new, pinned.as_deref(), output)?;
    let change = record(host, plan.wm, &built.image)?;
    Ok(Pinned {
        image: built.image,
        change,
        reused: false,
        interrupted: built.interrupted,
        inside,
    })
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
}

/// Waits for any other build using the template's one `build/manifest.json`, saying so.
fn take_turn(host: &HostTree) -> anyhow::Result<std::fs::File> {
    wait_for_lock(
        &host.state_dir.join("manifest.lock"),
        &format!(
            "waiting for the other build to finish: the template writes every build's manifest to {} \
             (declare `manifest_path` to build side by side)",
            host.show(&host.shared_manifest_file())
        ),
    )
}

/// Takes the lock file at `path`, first saying `why` when another process holds it. The lock
/// goes with the returned file, so a killed holder never leaves it taken.
fn wait_for_lock(path: &Path, why: &str) -> anyhow::Result<std::fs::File> {
    let lock =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!("{why}");
            lock.lock()
                .with_context(|| format!("locking {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(err)) => {
            return Err(err).with_context(|| format!("locking {}", path.display()))
        }
    }
    Ok(lock)
}

fn remove_if_there(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing the old {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Pins `image` for `wm` in images.conf. A lock makes this the one writer at a time, so two
/// builds finishing together both land; the write itself is atomic.
pub fn record(host: &HostTree, wm: WorkloadManager, image: &str) -> anyhow::Result<Change> {
    std::fs::create_dir_all(&host.state_dir)
        .with_context(|| format!("creating {}", host.state_dir.display()))?;
    let shown = host.show(&host.images_conf);
    let _lock = wait_for_lock(
        &host.state_dir.join("images.conf.lock"),
        &format!("waiting for another build to finish writing {shown}"),
    )?;
    let (text, change) = read_images_conf(host)?.pin(wm, image)?;
    match &change {
        Change::Unchanged => println!("{shown} already pins {image} for {wm}"),
        Change::Replaced { old, new } => {
            write_atomically(&host.images_conf, text.as_bytes())?;
            println!("{shown}: {wm}: {old} -> {new}");
        }
        Change::Added { new } => {
            write_atomically(&host.images_conf, text.as_bytes())?;
            println!("{shown}: added the missing line `{wm}: {new}`");
        }
    }
    Ok(change)
}
