//! `doctor`: every check a build depends on, one line each with its fix; the checks that wait
//! on a process or the network run side by side.

use anyhow::bail;
use clap::Args;
use xshell::Shell;

use crate::commands::{HelpFooter, ARTIFACTORY_ENVIRONMENT};
use crate::edges::artifactory::{self, Artifactory};
use crate::edges::gcloud::Gcloud;
use crate::edges::{ansible, git, packer};
use crate::host::HostTree;
use crate::model::config::Config;
use crate::model::doctor::{failed_required, Finding};
use crate::model::images_conf::ImagesConf;
use crate::model::template::{Template, FIRST_WITH_PLUGINS};
use crate::model::variables::{self, Extra};
use crate::model::WorkloadManager;
use crate::steps::host_files::{load_config, read_images_conf, read_template};
use crate::steps::launcher;

/// Check what a build needs (tools, access, the files it reads), each check on its own line
/// with the fix when it fails; exits non-zero when a required check fails.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[("doctor", "what this machine lacks for a build, one line per check with its fix")],
    environment: ARTIFACTORY_ENVIRONMENT,
    config: &["[gcp]", "[artifactory]", "the whole file is checked for mistakes"],
}.render())]
pub struct Doctor {}

/// One check that runs on a thread of its own.
type Check<'a> = Box<dyn FnOnce() -> Vec<Finding> + Send + 'a>;

impl Doctor {
    pub fn run(self, _sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
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
        ];
        let (config, conf, template) = (config.ok(), conf.ok(), template.ok());
        let has_launcher = launcher::local_packages(host).is_ok_and(|local| !local.is_empty());

        // The rest waits on processes and the network: side by side, so that doctor takes as
        // long as its slowest check, not as long as all of them.
        let (config, conf, template) = (config.as_ref(), conf.as_ref(), template.as_ref());
        let checks: Vec<Check<'_>> = vec![
            Box::new(move || packer_findings(host, template)),
            Box::new(move || vec![gcloud_finding(host, config)]),
            Box::new(move || vec![project_finding(host, config)]),
            Box::new(move || vec![pins_finding(host, config, conf)]),
            Box::new(move || vec![artifactory_finding(config, has_launcher)]),
            Box::new(move || vec![ansible_finding(host)]),
            Box::new(move || vec![git_finding(host)]),
        ];
        let slow: Vec<Vec<Finding>> = std::thread::scope(|scope| {
            let threads: Vec<_> = checks.into_iter().map(|check| scope.spawn(check)).collect();
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
            println!("{finding}");
        }
        let failed = failed_required(&findings);
        if !failed.is_empty() {
            bail!(
                "{} required check(s) failed: {}; fix them as their lines say, then run doctor again",
                failed.len(),
                failed.join(", ")
            );
        }
        println!("ready to build");
        Ok(())
    }
}

/// A shell of its own for a check's thread: one shell's state is not shared across threads.
fn shell(host: &HostTree) -> anyhow::Result<Shell> {
    let sh = Shell::new()?;
    sh.change_dir(&host.root);
    Ok(sh)
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
    let lacks: Vec<&str> = Extra::ALL
        .into_iter()
        .filter(|extra| !template.declares(extra.variable()))
        .map(Extra::variable)
        .collect();
    let detail = if lacks.is_empty() {
        format!("{shown} declares the contract's variables and all three optional ones")
    } else {
        format!(
            "{shown} declares the contract's variables; it lacks the optional {} (`build --dry-run` says what that costs)",
            lacks.join(", ")
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

/// gcloud on PATH, with an account to act as.
fn gcloud_finding(host: &HostTree, config: Option<&Config>) -> Finding {
    const CHECK: &str = "gcloud";
    let sh = match shell(host) {
        Ok(sh) => sh,
        Err(err) => return Finding::failed(CHECK, true, format!("{err:#}"), "see the problem"),
    };
    // `config get` reads only gcloud's own configuration; the project is any.
    let project = config.map_or("determined-ai", |c| c.gcp.project.as_str());
    let gcloud = match Gcloud::new(&sh, project) {
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
        Ok(None) => Finding::failed(
            CHECK,
            true,
            "no account is configured (`gcloud config get account` is unset)",
            "run `gcloud auth login`",
        ),
        Err(err) => Finding::failed(
            CHECK,
            true,
            format!("{err:#}"),
            "run `gcloud config get account` to see why it fails; `gcloud auth login` sets an account",
        ),
    }
}

/// The configured project answers one cheap read.
fn project_finding(host: &HostTree, config: Option<&Config>) -> Finding {
    const CHECK: &str = "GCP project";
    let Some(config) = config else {
        return Finding::skipped(CHECK, true, "needs a valid config");
    };
    let project = &config.gcp.project;
    let gcloud = match shell(host) {
        Ok(sh) => sh,
        Err(err) => return Finding::failed(CHECK, true, format!("{err:#}"), "see the problem"),
    };
    let Ok(gcloud) = Gcloud::new(&gcloud, project) else {
        return Finding::skipped(CHECK, true, "needs gcloud");
    };
    match gcloud.check_project() {
        Ok(()) => Finding::passed(CHECK, true, format!("{project} is reachable")),
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
fn pins_finding(host: &HostTree, config: Option<&Config>, conf: Option<&ImagesConf>) -> Finding {
    const CHECK: &str = "pinned images";
    let (Some(config), Some(conf)) = (config, conf) else {
        return Finding::skipped(CHECK, true, "needs a valid config and images.conf");
    };
    let project = &config.gcp.project;
    let sh = match shell(host) {
        Ok(sh) => sh,
        Err(err) => return Finding::failed(CHECK, true, format!("{err:#}"), "see the problem"),
    };
    let Ok(gcloud) = Gcloud::new(&sh, project) else {
        return Finding::skipped(CHECK, true, "needs gcloud");
    };
    let images = match gcloud.list_images() {
        Ok(images) => images,
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
            Some(image) if image.status != "READY" => {
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

/// Artifactory answers with the credentials given. A build with a launcher in build/ does
/// without it, so then a failure is only a warning.
fn artifactory_finding(config: Option<&Config>, has_launcher: bool) -> Finding {
    const CHECK: &str = "artifactory";
    let required = !has_launcher;
    let Some(config) = config else {
        return Finding::skipped(CHECK, required, "needs a valid config");
    };
    let client = match Artifactory::from_env(&config.artifactory.url) {
        Ok(client) => client,
        Err(err) => {
            return Finding::failed(
                CHECK,
                required,
                format!("{err:#}"),
                "fix the setting or variable it names",
            )
        }
    };
    let folder = client.folder().to_string();
    let without = if has_launcher {
        "; builds use the launcher in build/ meanwhile"
    } else {
        ", or put a launcher package in build/ (or pass --launcher PATH to build)"
    };
    match client.newest_release() {
        Ok(Some(newest)) => Finding::passed(
            CHECK,
            required,
            format!("{folder} answers; newest release {}", newest.version),
        ),
        Ok(None) => Finding::failed(
            CHECK,
            required,
            format!("no launcher release (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {folder}"),
            format!(
                "check artifactory.url in slurm-image.toml or {}",
                artifactory::URL_VAR
            ),
        ),
        Err(err) if artifactory::is_unreachable(&err) => Finding::failed(
            CHECK,
            required,
            format!("{err:#}"),
            format!("connect to the company VPN: the releases are reachable only there{without}"),
        ),
        Err(err) => Finding::failed(
            CHECK,
            required,
            format!("{err:#}"),
            format!(
                "check the credentials: {}, or {} and {}",
                artifactory::TOKEN_VAR,
                artifactory::USER_VAR,
                artifactory::PASSWORD_VAR
            ),
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
    match git::version(&sh) {
        Ok(version) => Finding::passed(CHECK, true, version),
        Err(err) => Finding::failed(
            CHECK,
            true,
            format!("{err:#}; prune reads the release branches' images.conf with it"),
            "install git",
        ),
    }
}
