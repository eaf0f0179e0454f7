//! `doctor`: every check a build depends on, one line each with its fix; the checks that wait
//! on a process or the network run side by side.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::bail;
use clap::Args;
use xshell::Shell;

use crate::commands::flags::FormatFlags;
use crate::commands::{HelpFooter, ARTIFACTORY_ENVIRONMENT, GCLOUD_ENVIRONMENT};
use crate::edges::artifactory;
use crate::edges::compute;
use crate::edges::gcloud::{is_not_logged_in, login_problem};
use crate::edges::{ansible, git, packer};
use crate::host::HostTree;
use crate::model::config::{Config, DEFAULT_VERIFY_SCRIPT};
use crate::model::doctor::{failed_required, readiness, ready_to_release, Finding, Outcome};
use crate::model::images_conf::ImagesConf;
use crate::model::launcher_choice::{self, Lookup, Situation, Wanted};
use crate::model::local_packages::{rename_advice, LocalPackages, RELEASE_NAME};
use crate::model::records::{self, Record};
use crate::model::template::{Template, FIRST_WITH_PLUGINS};
use crate::model::variables::{self, Extra};
use crate::model::WorkloadManager;
use crate::output;
use crate::steps::consumers::{self, TaskImages};
use crate::steps::host_files::{load_config, read_images_conf, read_template};
use crate::steps::playbook::check_playbooks;
use crate::steps::release::target;
use crate::steps::uncommitted::refuse_uncommitted;
use crate::steps::{launcher, verify};
use crate::term::is_interactive;

/// Check what a build needs (tools, access, the files it reads), each check on its own line
/// with the fix when it fails; exits non-zero when a required check fails.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[("doctor", "what this machine lacks for a build, one line per check with its fix")],
    environment: &[ARTIFACTORY_ENVIRONMENT, GCLOUD_ENVIRONMENT],
    config: &["[gcp]", "[artifactory]", "the whole file is checked for mistakes"],
}.render())]
pub struct Doctor {
    #[command(flatten)]
    pub output: FormatFlags,
}

/// One check that runs on a thread of its own.
type Check<'a> = Box<dyn FnOnce() -> Vec<Finding> + Send + 'a>;

impl Doctor {
    pub fn run(self, _sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        self.output.start();
        // The files first: they take no time, and the other checks read them.
        let config = load_config(host);
        let conf = read_images_conf(host);
        let template = read_template(host).and_then(|template| {
            variables::check_contract(&template)?;
            Ok(template)
        });
        let mut findings = vec![
            file_finding(
                "config",
                &config,
                |_| format!("{} is valid", host.show(&host.config_file)),
                format!("edit {} as the problem says", host.show(&host.config_file)),
            ),
            file_finding(
                "images.conf",
                &conf,
                |conf| {
                    WorkloadManager::ALL
                        .iter()
                        .map(|&wm| format!("{wm}: {}", conf.pinned(wm).unwrap_or("(no line)")))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                format!(
                    "fix it by hand, one `key: value` line per workload manager (`git diff {}` shows what changed)",
                    host.show(&host.images_conf)
                ),
            ),
            template_finding(host, &template, config.as_ref().ok()),
            checks_script_finding(host, config.as_ref().ok()),
        ];
        let (config, conf, template) = (config.ok(), conf.ok(), template.ok());
        let packages = launcher::build_dir_packages(host).unwrap_or_default();
        let build_dir = host.show(&host.build_dir);
        findings.extend(unreadable_findings(&packages, &build_dir));

        // The rest waits on processes and the network: side by side, so that doctor takes as
        // long as its slowest check, not as long as all of them.
        let (config, conf, template) = (config.as_ref(), conf.as_ref(), template.as_ref());
        let checks: Vec<Check<'_>> = vec![
            Box::new(move || packer_findings(host, template)),
            Box::new(move || gcloud_findings(host, config, conf)),
            Box::new(move || vec![artifactory_finding(config, &packages, &build_dir)]),
            Box::new(move || vec![ansible_finding(host)]),
            Box::new(move || vec![git_finding(host)]),
            Box::new(move || task_image_findings(host, config)),
            Box::new(move || leftover_findings(host)),
            Box::new(move || vec![format_finding(host)]),
            Box::new(move || vec![playbook_finding(host, template)]),
            Box::new(move || release_findings(host)),
        ];
        let slow: Vec<Vec<Finding>> = std::thread::scope(|scope| {
            let threads: Vec<_> = checks
                .into_iter()
                .map(|check| crate::session::spawn_scoped(scope, check))
                .collect();
            threads
                .into_iter()
                .map(|thread| {
                    thread.join().unwrap_or_else(|_| {
                        vec![Finding::failed(
                            "doctor",
                            true,
                            "a check panicked",
                            "report it with the output above",
                        )]
                    })
                })
                .collect()
        });
        findings.extend(slow.into_iter().flatten());
        for finding in &findings {
            outln!("{finding}");
            output::record(&Record::Finding(finding.into()));
        }
        let failed = failed_required(&findings);
        if !failed.is_empty() {
            bail!(
                "{} required check(s) failed: {}; fix them as their lines say, then run doctor again",
                failed.len(),
                failed.join(", ")
            );
        }
        outln!("{}", readiness(&findings));
        output::record(&Record::Result(records::Outcome {
            ready_to_release: Some(ready_to_release(&findings)),
            ..records::Outcome::done("doctor")
        }));
        Ok(())
    }
}

/// A shell of its own for a check's thread: one shell's state is not shared across threads.
fn shell(host: &HostTree) -> anyhow::Result<Shell> {
    crate::session::shell(&host.root)
}

/// A file the build reads, valid or not; the error names the file and what is wrong.
fn file_finding<T>(
    check: &'static str,
    read: &anyhow::Result<T>,
    passed: impl FnOnce(&T) -> String,
    fix: String,
) -> Finding {
    match read {
        Ok(value) => Finding::passed(check, true, passed(value)),
        Err(err) => Finding::failed(check, true, format!("{err:#}"), fix),
    }
}

fn template_finding(
    host: &HostTree,
    template: &anyhow::Result<Template>,
    config: Option<&Config>,
) -> Finding {
    let shown = host.show(&host.packer_dir);
    let template = match template {
        Ok(template) => template,
        Err(err) => {
            return Finding::failed(
                "template",
                true,
                format!("{err:#}"),
                format!("fix the template in {shown} as the problem says"),
            )
        }
    };
    if let Some(config) = config {
        if let Some(others) = template.other_projects(&config.gcp.project) {
            return Finding::failed(
                "template",
                true,
                format!(
                    "it builds in project {others} but the config says gcp.project = {:?}",
                    config.gcp.project
                ),
                "make them agree: images, prune and orphans look in gcp.project",
            );
        }
    }
    let takes: Vec<&str> = Extra::ALL
        .into_iter()
        .filter(|extra| template.declares(extra.variable()))
        .map(Extra::variable)
        .collect();
    let detail = if takes.is_empty() {
        format!("{shown} declares the contract's variables")
    } else {
        format!(
            "{shown} declares the contract's variables, and takes {} too",
            takes.join(", ")
        )
    };
    Finding::passed("template", true, detail)
}

/// packer, then its plugins, which need to know the packer.
fn packer_findings(host: &HostTree, template: Option<&Template>) -> Vec<Finding> {
    let minimum = template
        .and_then(|t| t.minimum_packer().ok())
        .unwrap_or(FIRST_WITH_PLUGINS);
    let sh = match shell(host) {
        Ok(sh) => sh,
        Err(err) => {
            return vec![Finding::failed(
                "packer",
                true,
                format!("{err:#}"),
                "see the problem",
            )]
        }
    };
    let version = match packer::installed_version(&sh) {
        Ok(version) if version >= minimum => version,
        Ok(version) => {
            return vec![
                Finding::failed(
                    "packer",
                    true,
                    format!(
                        "packer {} is installed but the template needs >= {}",
                        packer::version_text(version),
                        packer::version_text(minimum)
                    ),
                    packer::INSTALL_HINT,
                ),
                Finding::skipped("packer plugins", true, "needs a recent enough packer"),
            ]
        }
        Err(_) => {
            return vec![
                Finding::failed(
                    "packer",
                    true,
                    "`packer version` does not run: packer is not on PATH",
                    packer::INSTALL_HINT,
                ),
                Finding::skipped("packer plugins", true, "needs packer"),
            ]
        }
    };
    let found = Finding::passed(
        "packer",
        true,
        format!(
            "{} (the template needs >= {})",
            packer::version_text(version),
            packer::version_text(minimum)
        ),
    );
    let Some(template) = template else {
        return vec![
            found,
            Finding::skipped("packer plugins", true, "needs the template"),
        ];
    };
    let plugins = if template.plugin_sources.is_empty() {
        Finding::passed("packer plugins", true, "the template requires none")
    } else if version < (1, 8, 0) {
        Finding::passed(
            "packer plugins",
            true,
            "packer before 1.8 cannot list them, so each build runs `packer init` first",
        )
    } else {
        match packer::missing_plugins(&sh, template, version) {
            Ok(missing) if missing.is_empty() => Finding::passed(
                "packer plugins",
                true,
                format!(
                    "installed: {}",
                    template
                        .plugin_sources
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Ok(missing) => Finding::failed(
                "packer plugins",
                true,
                format!("not installed: {}", missing.join(", ")),
                "run `cargo xtask slurm-image init` (a build also runs it)",
            ),
            Err(err) => Finding::failed(
                "packer plugins",
                true,
                format!("{err:#}"),
                "run `packer plugins installed` to see why it fails",
            ),
        }
    };
    vec![found, plugins]
}

/// gcloud, the project and the pinned images, side by side. When gcloud is logged out every
/// call fails alike, so the cause is said once, on the gcloud line, and the checks that need
/// a login are skipped.
fn gcloud_findings(
    host: &HostTree,
    config: Option<&Config>,
    conf: Option<&ImagesConf>,
) -> Vec<Finding> {
    let logged_out = AtomicBool::new(false);
    let (account, project, pins) = std::thread::scope(|scope| {
        let project =
            crate::session::spawn_scoped(scope, || project_finding(host, config, &logged_out));
        let pins =
            crate::session::spawn_scoped(scope, || pins_finding(host, config, conf, &logged_out));
        let account = gcloud_finding(host, config, &logged_out);
        let panicked = || {
            Finding::failed(
                "doctor",
                true,
                "a check panicked",
                "report it with the output above",
            )
        };
        (
            account,
            project.join().unwrap_or_else(|_| panicked()),
            pins.join().unwrap_or_else(|_| panicked()),
        )
    });
    if !logged_out.load(Ordering::Relaxed) {
        return vec![account, project, pins];
    }
    let account = match (&account.outcome, &project.outcome, &pins.outcome) {
        (Outcome::Failed { .. }, _, _) => account,
        // The account is set but its credentials are not valid: the failed read says so in
        // gcloud's words.
        (_, Outcome::Failed { problem, .. }, _) | (_, _, Outcome::Failed { problem, .. }) => {
            Finding::failed("gcloud", true, problem.clone(), "run `gcloud auth login`")
        }
        _ => Finding::failed("gcloud", true, "not logged in", "run `gcloud auth login`"),
    };
    vec![
        account,
        Finding::skipped(project.check, true, "needs gcloud login"),
        Finding::skipped(pins.check, true, "needs gcloud login"),
    ]
}

/// gcloud on PATH, with an account to act as; `logged_out` is set when it has none.
fn gcloud_finding(host: &HostTree, config: Option<&Config>, logged_out: &AtomicBool) -> Finding {
    const CHECK: &str = "gcloud";
    let sh = match shell(host) {
        Ok(sh) => sh,
        Err(err) => return Finding::failed(CHECK, true, format!("{err:#}"), "see the problem"),
    };
    // `config get` reads only gcloud's own configuration; the project is any.
    let project = config.map_or("determined-ai", |c| c.gcp.project.as_str());
    let gcloud = match compute::connect(&sh, project) {
        Ok(gcloud) => gcloud,
        Err(_) => {
            return Finding::failed(
                CHECK,
                true,
                "not on PATH",
                "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install",
            )
        }
    };
    match gcloud.account() {
        Ok(Some(account)) => Finding::passed(CHECK, true, format!("account {account}")),
        Ok(None) => {
            logged_out.store(true, Ordering::Relaxed);
            Finding::failed(
                CHECK,
                true,
                "not logged in: no account is configured (`gcloud config get account` is unset)",
                "run `gcloud auth login`",
            )
        }
        Err(err) if is_not_logged_in(&err) => {
            logged_out.store(true, Ordering::Relaxed);
            Finding::failed(CHECK, true, login_problem(&err).unwrap_or_default(), "run `gcloud auth login`")
        }
        Err(err) => {
            Finding::failed(
                CHECK,
                true,
                format!("{err:#}"),
                "run `gcloud config get account` to see why it fails; `gcloud auth login` sets an account",
            )
        }
    }
}

/// The configured project answers one cheap read.
fn project_finding(host: &HostTree, config: Option<&Config>, logged_out: &AtomicBool) -> Finding {
    const CHECK: &str = "GCP project";
    let Some(config) = config else {
        return Finding::skipped(CHECK, true, "needs a valid config");
    };
    let project = &config.gcp.project;
    let gcloud = match shell(host) {
        Ok(sh) => sh,
        Err(err) => return Finding::failed(CHECK, true, format!("{err:#}"), "see the problem"),
    };
    let Ok(gcloud) = compute::connect(&gcloud, project) else {
        return Finding::skipped(CHECK, true, "needs gcloud");
    };
    match gcloud.check_project() {
        Ok(()) => Finding::passed(CHECK, true, format!("{project} is reachable")),
        Err(err) if is_not_logged_in(&err) => {
            logged_out.store(true, Ordering::Relaxed);
            Finding::failed(CHECK, true, login_problem(&err).unwrap_or_default(), "run `gcloud auth login`")
        }
        Err(err) => Finding::failed(
            CHECK,
            true,
            format!("{project} is not reachable: {err:#}"),
            format!(
                "ask for access to {project}, or fix gcp.project in {} (`gcloud auth login` when logged out)",
                host.show(&host.config_file)
            ),
        ),
    }
}

/// The images images.conf pins exist in the project and are READY.
fn pins_finding(
    host: &HostTree,
    config: Option<&Config>,
    conf: Option<&ImagesConf>,
    logged_out: &AtomicBool,
) -> Finding {
    const CHECK: &str = "pinned images";
    let (Some(config), Some(conf)) = (config, conf) else {
        return Finding::skipped(CHECK, true, "needs a valid config and images.conf");
    };
    let project = &config.gcp.project;
    let sh = match shell(host) {
        Ok(sh) => sh,
        Err(err) => return Finding::failed(CHECK, true, format!("{err:#}"), "see the problem"),
    };
    let Ok(gcloud) = compute::connect(&sh, project) else {
        return Finding::skipped(CHECK, true, "needs gcloud");
    };
    let images = match gcloud.list_images() {
        Ok(images) => images,
        Err(err) if is_not_logged_in(&err) => {
            logged_out.store(true, Ordering::Relaxed);
            return Finding::failed(
                CHECK,
                true,
                login_problem(&err).unwrap_or_default(),
                "run `gcloud auth login`",
            );
        }
        Err(err) => {
            return Finding::failed(
                CHECK,
                true,
                format!("cannot list the images of {project}: {err:#}"),
                "see the GCP project check",
            )
        }
    };
    let mut ready = Vec::new();
    let mut problems = Vec::new();
    let mut to_build = Vec::new();
    for wm in WorkloadManager::ALL {
        let Some(pinned) = conf.pinned(wm) else {
            problems.push(format!("images.conf has no `{wm}:` line"));
            to_build.push(wm);
            continue;
        };
        match images.iter().find(|image| image.name == pinned) {
            None => problems.push(format!("{wm}: {pinned} is not in project {project}")),
            Some(image) if !image.is_ready() => {
                problems.push(format!("{wm}: {pinned} is {}", image.status))
            }
            Some(_) => {
                ready.push(format!("{wm}: {pinned} READY"));
                continue;
            }
        }
        to_build.push(wm);
    }
    if problems.is_empty() {
        return Finding::passed(CHECK, true, ready.join(", "));
    }
    let builds = to_build
        .iter()
        .map(|wm| format!("`cargo xtask slurm-image build --wm {wm}`"))
        .collect::<Vec<_>>()
        .join(" and ");
    Finding::failed(
        CHECK,
        true,
        problems.join("; "),
        format!("pin an existing READY image in images.conf, or build one: {builds}"),
    )
}

/// Each `.deb` in build/ whose name the tool cannot read: a failure when it may be the package
/// meant (builds stop at it), else a warning (builds leave it alone).
fn unreadable_findings(packages: &LocalPackages, build_dir: &str) -> Vec<Finding> {
    const CHECK: &str = "launcher package";
    packages
        .unreadable
        .iter()
        .map(|package| {
            let path = format!("{build_dir}/{}", package.file_name);
            let effect = if package.may_be_meant {
                "and may be the package meant, so builds stop at it"
            } else {
                "so builds leave it alone"
            };
            Finding::failed(
                CHECK,
                package.may_be_meant,
                format!("{path} is not named as a launcher package ({RELEASE_NAME}), {effect}"),
                format!(
                    "if it is one, {}; if not, remove it",
                    rename_advice(&path, &package.expected)
                ),
            )
        })
        .collect()
}

/// Artifactory answers with the credentials given, and what a build decides with its answer.
/// A build with a launcher in build/ does without it, so then a failure is only a warning.
fn artifactory_finding(
    config: Option<&Config>,
    packages: &LocalPackages,
    build_dir: &str,
) -> Finding {
    const CHECK: &str = "artifactory";
    let local = &packages.releases;
    let required = local.is_empty();
    let Some(config) = config else {
        return Finding::skipped(CHECK, required, "needs a valid config");
    };
    let lookup = match launcher::look_up(config) {
        Ok(lookup) => lookup,
        Err(err) => {
            return Finding::failed(
                CHECK,
                required,
                format!("{err:#}"),
                "fix the setting or variable it names",
            )
        }
    };
    // Decided as `build` decides, from this same answer.
    let situation = Situation {
        local,
        unreadable: &packages.unreadable,
        build_dir,
        interactive: is_interactive(),
    };
    let build = launcher_choice::decide(&Wanted::default(), &situation, || lookup.as_data())
        .what_builds_do();
    let without = if required {
        ", or put a launcher package in build/ (or pass --launcher PATH to build)"
    } else {
        "; builds use the launcher in build/ meanwhile"
    };
    match &lookup {
        Lookup::Found { from, .. } => Finding::passed(
            CHECK,
            required,
            format!(
                "{} answers; {}; {build}",
                from.folder(),
                lookup.newest_line()
            ),
        ),
        Lookup::NoRelease { .. } => Finding::failed(
            CHECK,
            required,
            lookup.newest_line(),
            format!(
                "check artifactory.url in slurm-image.toml or {}; meanwhile {build}",
                artifactory::URL_VAR
            ),
        ),
        Lookup::Unreachable { slow: true, .. } => Finding::failed(
            CHECK,
            required,
            lookup.newest_line(),
            format!("retry later: Artifactory is reachable, so the VPN is not the cause{without}"),
        ),
        Lookup::Unreachable { slow: false, .. } => Finding::failed(
            CHECK,
            required,
            lookup.newest_line(),
            format!("connect to the company VPN: the releases are reachable only there{without}"),
        ),
        Lookup::Failed { why } => Finding::failed(
            CHECK,
            required,
            why.clone(),
            format!(
                "check the credentials: {}, or {} and {}",
                artifactory::TOKEN_VAR,
                artifactory::USER_VAR,
                artifactory::PASSWORD_VAR
            ),
        ),
    }
}

/// The team's checks script, which builds run on a VM before each pin: there (a build without
/// it pins unverified) and free of syntax errors (which would fail every verification).
fn checks_script_finding(host: &HostTree, config: Option<&Config>) -> Finding {
    const CHECK: &str = "checks script";
    let Some(config) = config else {
        return Finding::skipped(
            CHECK,
            false,
            "the config names it, and the config is not valid",
        );
    };
    let path = host.packer_dir.join(config.verify.script());
    let shown = host.show(&path);
    // A script the config names must be there; the default one may be missing.
    let named = config.verify.script.is_some();
    if !path.is_file() {
        return Finding::failed(
            CHECK,
            named,
            format!("no checks script at {shown}, so builds pin their images unverified"),
            format!(
                "add it (this tool's repository has a default {DEFAULT_VERIFY_SCRIPT} in tools/slurm/packer/){}",
                if named { " or fix verify.script in the config" } else { "" }
            ),
        );
    }
    match verify::check_syntax(&path) {
        Ok(()) => Finding::passed(
            CHECK,
            true,
            format!(
                "{shown} passes `bash -n`; builds boot each image on a {} VM and wait at most {} for its report",
                config.verify.machine_type, config.verify.timeout
            ),
        ),
        Err(err) => Finding::failed(
            CHECK,
            true,
            format!("{err:#}"),
            format!("fix {shown}: every verification would fail on it"),
        ),
    }
}

/// ansible-playbook lets a build check the playbook before a VM runs it; a build goes on
/// without it.
fn ansible_finding(host: &HostTree) -> Finding {
    const CHECK: &str = "ansible-playbook";
    let sh = match shell(host) {
        Ok(sh) => sh,
        Err(err) => return Finding::failed(CHECK, false, format!("{err:#}"), "see the problem"),
    };
    if !ansible::installed(&sh) {
        return Finding::failed(
            CHECK,
            false,
            "not installed, so the playbook is checked only on the VM, half an hour into a build",
            ansible::INSTALL_HINT,
        );
    }
    match ansible::version(&sh) {
        Ok(version) => Finding::passed(
            CHECK,
            false,
            format!("{version}: builds check the playbook before starting a VM"),
        ),
        Err(err) => Finding::failed(CHECK, false, format!("{err:#}"), ansible::INSTALL_HINT),
    }
}

/// git reads the release branches' images.conf, which prune must not delete from.
fn git_finding(host: &HostTree) -> Finding {
    const CHECK: &str = "git";
    let sh = match shell(host) {
        Ok(sh) => sh,
        Err(err) => return Finding::failed(CHECK, true, format!("{err:#}"), "see the problem"),
    };
    // Both wait on git: side by side.
    let (version, identity) = std::thread::scope(|scope| {
        let identity = crate::session::spawn_scoped(scope, || {
            let sh = shell(host).ok()?;
            git::identity_problem(&sh, &host.root)
        });
        let version = git::version(&sh);
        (version, identity.join().unwrap_or_default())
    });
    match version {
        // A build needs no identity, a release commits with it: a warning, not a failure.
        Ok(version) => match identity {
            None => Finding::passed(CHECK, true, version),
            Some(problem) => Finding::failed(
                CHECK,
                false,
                format!("{version}, but {problem}, so `release` cannot commit"),
                git::IDENTITY_FIX,
            )
            .stopping_a_release(),
        },
        Err(err) => Finding::failed(
            CHECK,
            true,
            format!("{err:#}; prune reads the release branches' images.conf with it"),
            "install git",
        ),
    }
}

/// The task images the image caches, against the files that use them: a failure for each
/// mention with another tag and each key or variable that holds no task image, because `check`
/// fails and `release` refuses on them; a warning for each consumer file that is not there.
fn task_image_findings(host: &HostTree, config: Option<&Config>) -> Vec<Finding> {
    const CHECK: &str = "task images";
    let Some(config) = config else {
        return vec![Finding::skipped(CHECK, true, "the config is not readable")];
    };
    let found = TaskImages::read(host, config);
    let mut findings: Vec<Finding> = found
        .mismatches
        .iter()
        .map(|m| Finding::failed(CHECK, true, m.problem(), m.fix()))
        .chain(
            found
                .unmatched
                .iter()
                .map(|u| Finding::failed(CHECK, true, u.problem(), u.fix())),
        )
        .chain(found.unreadable.iter().map(|(file, why)| {
            Finding::failed(
                CHECK,
                true,
                format!(
                    "{file} cannot be read as text ({why}), so its task images were not compared"
                ),
                "put the consumer file there, or correct its path in image.task_image_consumers",
            )
        }))
        .collect();
    if !found.missing.is_empty() {
        findings.push(Finding::failed(
            CHECK,
            false,
            format!(
                "{} not there, so the task images they name were not compared",
                found.missing.join(", ")
            ),
            format!(
                "remove a file the repository no longer has from image.task_image_consumers in {}",
                host.show(&host.config_file)
            ),
        ));
    }
    if findings.is_empty() {
        let files = config.image.task_image_consumers.len();
        findings.push(Finding::passed(
            CHECK,
            true,
            format!("the {files} consumer files name the tags the image caches"),
        ));
    }
    findings
}

/// Lines that still call the make targets and scripts adoption removed.
fn leftover_findings(host: &HostTree) -> Vec<Finding> {
    const CHECK: &str = "adoption";
    let found = shell(host).and_then(|sh| consumers::leftovers(&sh, host));
    match found {
        Ok(found) if found.is_empty() => vec![Finding::passed(
            CHECK,
            false,
            "nothing calls the removed Makefile or its scripts",
        )],
        Ok(found) => found
            .iter()
            .map(|l| Finding::failed(CHECK, false, l.problem(), l.fix()))
            .collect(),
        Err(err) => vec![Finding::skipped(
            CHECK,
            false,
            format!("the repository could not be searched ({err:#})"),
        )],
    }
}

/// `check` fails on a template packer would reformat.
fn format_finding(host: &HostTree) -> Finding {
    const CHECK: &str = "format";
    let formatted = shell(host).and_then(|sh| {
        let _dir = sh.push_dir(&host.packer_dir);
        packer::run_fmt(&sh, true)
    });
    match formatted {
        Ok(packer::Formatting::Done) => Finding::passed(
            CHECK,
            false,
            format!("{} is in packer's layout", host.show(&host.packer_dir)),
        ),
        Ok(packer::Formatting::Needed(files)) => Finding::failed(
            CHECK,
            false,
            format!("{} need formatting, so `check` fails", files.join(", ")),
            "run `cargo xtask slurm-image fmt` and commit the result",
        ),
        Err(err) => Finding::skipped(
            CHECK,
            false,
            format!("`packer fmt -check` did not run ({err:#})"),
        ),
    }
}

/// A build and a release stop on a playbook that fails `ansible-playbook --syntax-check`,
/// before any VM: so does doctor.
fn playbook_finding(host: &HostTree, template: Option<&Template>) -> Finding {
    const CHECK: &str = "playbook";
    let Some(template) = template else {
        return Finding::skipped(CHECK, true, "the template is not readable");
    };
    let sh = match shell(host) {
        Ok(sh) => sh,
        Err(err) => return Finding::skipped(CHECK, true, format!("{err:#}")),
    };
    if !ansible::installed(&sh) {
        return Finding::skipped(
            CHECK,
            true,
            "ansible-playbook is not installed, so the playbook is checked only on the build VM",
        );
    }
    for wm in WorkloadManager::ALL {
        if let Err(err) = check_playbooks(&sh, host, template, wm) {
            return Finding::failed(
                CHECK,
                true,
                format!("{err:#}"),
                "fix the playbook: builds and releases stop on it before any VM",
            );
        }
    }
    Finding::passed(
        CHECK,
        true,
        "passes `ansible-playbook --syntax-check` for slurm and pbs",
    )
}

/// What a release refuses to start with that a build does without: tracked changes or
/// uncommitted template inputs, and a release branch of today that already exists.
fn release_findings(host: &HostTree) -> Vec<Finding> {
    let sh = match shell(host) {
        Ok(sh) => sh,
        Err(err) => return vec![Finding::skipped("checkout", false, format!("{err:#}"))],
    };
    let checkout = match git::checkout(&sh, &host.root) {
        Ok(checkout) => checkout,
        Err(err) => {
            return vec![Finding::failed(
                "checkout",
                false,
                format!("{err:#}"),
                "run the tool in the repository's git checkout to release",
            )
            .stopping_a_release()]
        }
    };
    let clean = match refuse_uncommitted(&sh, host, &checkout, false) {
        Ok(()) => Finding::passed(
            "checkout",
            false,
            "no uncommitted changes, and every file packer reads is committed",
        ),
        Err(err) => Finding::failed(
            "checkout",
            false,
            format!("{err:#}"),
            "a build goes on; a release refuses until these are committed or removed",
        )
        .stopping_a_release(),
    };
    let branch = match target(&sh, host, &checkout, false, None) {
        Ok(target) => Finding::passed(
            "release branch",
            false,
            format!("{} is free", target.name()),
        ),
        Err(err) => Finding::failed(
            "release branch",
            false,
            format!("{err:#}"),
            "or name another branch with `release --branch NAME`",
        )
        .stopping_a_release(),
    };
    vec![clean, branch]
}
