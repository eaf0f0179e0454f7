//! `check`: the template formatted, valid with each workload manager's variables, and its
//! playbook's syntax sound.

use anyhow::{bail, Context};
use clap::Args;
use xshell::Shell;

use crate::commands::{fmt::Fmt, HelpFooter};
use crate::edges::packer::{self, Output};
use crate::host::{write_state_file, HostTree};
use crate::model::launcher_choice::Launcher;
use crate::model::launcher_version::LauncherPackage;
use crate::model::WorkloadManager;
use crate::steps::build::{Inputs, Plan};
use crate::steps::consumers::TaskImages;
use crate::steps::launcher;
use crate::steps::playbook::check_playbooks;

/// Check the template: `fmt --check`, `packer validate` with each workload manager's variables,
/// and `ansible-playbook --syntax-check` on its playbook.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[("check", "what CI runs; writes only target/slurm-image/check-*.pkrvars.hcl")],
    environment: &[],
    config: &["[gcp]", "[image]", "[slurm]", "[pbs]"],
}.render())]
pub struct Check {}

impl Check {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        Fmt { check: true }.run(sh, host)?;
        let inputs = Inputs::read(host)?;
        TaskImages::read(host, &inputs.config).refuse_mismatches(host)?;
        packer::check_version(sh, &inputs.template)?;
        // The template uploads the launcher, and packer validate checks that the file exists;
        // without one, only the syntax can be checked.
        let local = launcher::local_packages(host)?;
        let package = match local.first() {
            Some(package) => package.clone(),
            None => LauncherPackage::from_file_name("hpe-hpc-launcher_0.0.0-0_amd64.deb")
                .context("the placeholder is a release name")?,
        };
        host.state_dir_ready()?;
        for wm in WorkloadManager::ALL {
            let plan = Plan::new(
                host,
                &inputs,
                wm,
                &Launcher::Known(package.clone()),
                None,
                false,
            )?;
            let var_file = host.state_dir.join(format!("check-{wm}.pkrvars.hcl"));
            write_state_file(&var_file, plan.variables.render("check").as_bytes())?;
            let _dir = sh.push_dir(&host.packer_dir);
            let output = packer::validate(sh, &var_file, local.is_empty())
                .ignore_status()
                .output()
                .context("running packer validate")?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            // Packer's "The configuration is valid." comes once per workload manager: each of
            // its lines says which.
            let prefix = format!("[{wm}] ");
            for line in stdout.lines() {
                Output::Prefixed(&prefix).print(line);
            }
            for line in stderr.lines() {
                Output::Prefixed(&prefix).say(line);
            }
            if !output.status.success() {
                bail!("`packer validate` failed for {wm} (see above)");
            }
            // Packer only warns about a variable the template does not declare, and the value
            // never reaches the image.
            if let Some(undefined) = packer::undefined_variables(&format!("{stdout}{stderr}")) {
                bail!(
                    "`packer validate` for {wm} warns of undefined variables ({undefined}): \
                     the template must declare every variable the build passes"
                );
            }
        }
        if local.is_empty() {
            errln!(
                "note: no launcher package in {}, so only the syntax was validated; \
                 `cargo xtask slurm-image launcher --fetch` or copying one there allows a full check",
                host.show(&host.build_dir)
            );
        }
        let playbooks = check_playbooks(sh, host, &inputs.template, WorkloadManager::Slurm)?;
        if !playbooks.is_empty() {
            outln!(
                "playbook {} passes `ansible-playbook --syntax-check`",
                playbooks.join(", ")
            );
        }
        outln!("template is formatted and valid");
        Ok(())
    }
}
