//! `build`: bake one workload manager's image with packer and pin it in images.conf.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use sha2::{Digest, Sha256};
use xshell::Shell;

use crate::commands::{
    images, launcher, load_config, read_images_conf, read_template, HelpFooter,
    ARTIFACTORY_ENVIRONMENT,
};
use crate::edges::gcloud::Gcloud;
use crate::edges::packer::{self, Outcome, Output};
use crate::host::{write_atomically, HostTree};
use crate::model::config::Config;
use crate::model::images_conf::Change;
use crate::model::launcher_version::LauncherPackage;
use crate::model::template::Template;
use crate::model::variables::{self, Extra, ExtraValues, Variables};
use crate::model::{hex, manifest, WorkloadManager};
use crate::term::{is_interactive, signal_name, Interrupted};

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
    config: &["[gcp]", "[image]", "[slurm]", "[pbs]", "[artifactory]", "[prune] (for the list of images after the build)"],
}.render())]
pub struct Build {
    /// The workload manager the image is for.
    #[arg(long, value_enum, ignore_case = true, default_value_t = WorkloadManager::Slurm)]
    pub wm: WorkloadManager,
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
    /// Show everything up to packer (launcher, variables, command); change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl Build {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let wm = self.wm;
        let inputs = Inputs::read(host)?;
        if self.dry_run {
            return self.dry_run(sh, host, &inputs);
        }
        let version = packer::check_version(sh, &inputs.template)?;
        // packer's IAP tunnel runs gcloud, and the image summary needs it: find out now, not
        // after an hour of VM time.
        Gcloud::new(sh, &inputs.config.gcp.project)?;
        ensure_plugins(sh, host, &inputs.template, version)?;

        let choice = launcher::ForBuild {
            path: self.launcher.clone(),
            offline: self.offline,
            yes: self.yes,
            dry_run: false,
        };
        let package = launcher::for_build(host, &inputs.config, &choice)?;
        let plan = Plan::new(host, &inputs, wm, &package, self.debug)?;
        plan.explain_off(host);
        let pinned = build_one(sh, host, &plan, Output::Inherit)?;
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
        images::after_build(sh, host, &inputs.config, wm);
        next_steps(host, wm, &pinned.change);
        Ok(())
    }

    /// Everything up to packer, changing nothing, and never failing for lack of network or
    /// tools: what it cannot find out, it lists.
    fn dry_run(&self, sh: &Shell, host: &HostTree, inputs: &Inputs) -> anyhow::Result<()> {
        let mut unknown = Vec::new();
        match packer::check_version(sh, &inputs.template) {
            Ok(version) => println!("packer: {} (installed)", packer::show(version)),
            Err(err) => unknown.push(format!("packer: {err:#}")),
        }
        if let Err(err) = Gcloud::new(sh, &inputs.config.gcp.project) {
            unknown.push(format!("gcloud: {err:#}"));
        }
        let choice = launcher::ForBuild {
            path: self.launcher.clone(),
            offline: self.offline,
            yes: self.yes,
            dry_run: true,
        };
        let package = match launcher::for_build(host, &inputs.config, &choice) {
            Ok(package) => Some(package),
            Err(err) => {
                unknown.push(format!("launcher: {err:#}"));
                None
            }
        };
        let placeholder = LauncherPackage::from_file_name(UNKNOWN_LAUNCHER)
            .context("the placeholder is a release name")?;
        let plan = Plan::new(
            host,
            inputs,
            self.wm,
            package.as_ref().unwrap_or(&placeholder),
            self.debug,
        )?;
        plan.explain_off(host);
        println!(
            "# {} would contain:\n{}",
            host.show(&plan.var_file),
            plan.variables.render("build")
        );
        println!(
            "# and run, in {}:\n{}",
            host.show(&host.packer_dir),
            plan.command_line(sh, host)
        );
        match &plan.fingerprint {
            Some(fingerprint) => println!("# input fingerprint: {fingerprint}"),
            None => unknown.push("input fingerprint: the launcher package is not in build/".into()),
        }
        println!(
            "# then pin the new image in {} on the `{}:` line",
            host.show(&host.images_conf),
            self.wm
        );
        if !unknown.is_empty() {
            println!("# could not find out (a real build would stop here):");
            for line in unknown {
                println!("#   {line}");
            }
        }
        Ok(())
    }
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
        if !template.projects.is_empty() && !template.projects.contains(&config.gcp.project) {
            bail!(
                "the template builds in project {} but {} says gcp.project = {:?}: images would be built where \
                 images, prune and orphans do not look; make them agree",
                template.projects.iter().cloned().collect::<Vec<_>>().join(", "),
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
    /// `None` when the launcher package is not there to hash (a dry run).
    pub fingerprint: Option<String>,
    pub debug: bool,
}

impl Plan {
    pub fn new(
        host: &HostTree,
        inputs: &Inputs,
        wm: WorkloadManager,
        package: &LauncherPackage,
        debug: bool,
    ) -> anyhow::Result<Plan> {
        let contract = variables::contract(&inputs.config, wm, &package.file_name);
        let deb = host.build_dir.join(&package.file_name);
        let fingerprint = if deb.is_file() {
            Some(input_fingerprint(host, &contract, &deb)?)
        } else {
            None
        };
        let shared_manifest = inputs.shared_manifest();
        let manifest = if shared_manifest {
            host.shared_manifest_file()
        } else {
            host.manifest_file(wm)
        };
        let mut labels = vec![("workload-manager".to_string(), wm.key().to_string())];
        if let Some(fingerprint) = &fingerprint {
            labels.push(("input-fingerprint".to_string(), fingerprint.clone()));
        }
        let extras = ExtraValues {
            manifest_path: manifest.display().to_string(),
            image_labels: labels,
            source_image: None,
        };
        let (variables, off) = variables::for_template(contract, &inputs.template, &extras);
        Ok(Plan {
            wm,
            variables,
            // The source image is not resolved yet, so that extra is not yet a loss to report.
            off: off
                .into_iter()
                .filter(|extra| *extra != Extra::SourceImage)
                .collect(),
            var_file: host.variables_file(wm),
            manifest,
            shared_manifest,
            log_file: host.log_file(wm),
            fingerprint,
            debug,
        })
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
    output: Output<'_>,
) -> anyhow::Result<Pinned> {
    let built = plan.run(sh, host, output)?;
    let change = record(host, plan.wm, &built.image)?;
    Ok(Pinned {
        image: built.image,
        change,
        interrupted: built.interrupted,
    })
}

/// An image built and pinned in images.conf.
pub struct Pinned {
    pub image: String,
    pub change: Change,
    /// A signal that arrived as packer finished; the caller stops after the pin.
    pub interrupted: Option<i32>,
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

/// The last lines of a build: what a person does next.
fn next_steps(host: &HostTree, wm: WorkloadManager, change: &Change) {
    if *change == Change::Unchanged {
        return;
    }
    let shown = host.show(&host.images_conf);
    println!("next: git add {shown} && git commit -m \"Update the {wm} test cluster image\"");
}

/// A digest of everything the image is made from: the template folder's files (but build/,
/// the config and the README), the variables of the contract, and the launcher package. Equal
/// fingerprints mean a rebuild would bake the same image.
fn input_fingerprint(host: &HostTree, contract: &Variables, deb: &Path) -> anyhow::Result<String> {
    let mut files = Vec::new();
    collect_files(&host.packer_dir, &host.build_dir, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for file in &files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let rel = file.strip_prefix(&host.packer_dir).unwrap_or(file);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(Sha256::digest(&bytes));
    }
    hasher.update(contract.render("build").as_bytes());
    let mut deb_file =
        std::fs::File::open(deb).with_context(|| format!("reading {}", deb.display()))?;
    let mut deb_hasher = Sha256::new();
    std::io::copy(&mut deb_file, &mut deb_hasher)
        .with_context(|| format!("reading {}", deb.display()))?;
    hasher.update(deb_hasher.finalize());
    let digest = hasher.finalize();
    // GCE label values hold at most 63 characters: 128 bits of the digest are plenty.
    Ok(hex(&digest[..16]))
}

/// Every file under the template folder except build/ and the config file (whose effect on
/// the image is already in the variables).
fn collect_files(dir: &Path, build_dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path == build_dir
            || path
                .file_name()
                .is_some_and(|n| n == "slurm-image.toml" || n == "README.md")
        {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, build_dir, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
