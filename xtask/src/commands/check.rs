use anyhow::{bail, Context};
use clap::Args;
use xshell::Shell;

use crate::commands::{build, fmt::Fmt, launcher, load_config, HelpFooter};
use crate::edges::packer;
use crate::host::HostTree;
use crate::model::WorkloadManager;

/// Check the template: `fmt --check`, then `packer validate` with each workload manager's variables.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[("check", "what CI runs on the template; changes nothing but build/check-*.pkrvars.hcl")],
    environment: &[],
    config: &["[gcp]", "[image]", "[slurm]", "[pbs]"],
}.render())]
pub struct Check {}

impl Check {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        Fmt { check: true }.run(sh, host)?;
        let config = load_config(host)?;
        packer::check_version(sh, &host.packer_dir)?;
        // The template uploads the launcher, and packer validate checks that the file exists;
        // without one, only the syntax can be checked.
        let local = launcher::local_packages(host)?;
        let launcher_deb = local.first().map(|p| p.file_name.clone());
        std::fs::create_dir_all(&host.build_dir)
            .with_context(|| format!("creating {}", host.build_dir.display()))?;
        for wm in WorkloadManager::ALL {
            let placeholder = "hpe-hpc-launcher_0.0.0-0_amd64.deb".to_string();
            let deb = launcher_deb.as_ref().unwrap_or(&placeholder);
            let variables = build::variables(host, &config, wm, deb, &"0".repeat(32));
            let var_file = host.build_dir.join(format!("check-{wm}.pkrvars.hcl"));
            std::fs::write(&var_file, variables.render())
                .with_context(|| format!("writing {}", var_file.display()))?;
            let _dir = sh.push_dir(&host.packer_dir);
            if packer::validate(sh, &var_file, launcher_deb.is_none())
                .run()
                .is_err()
            {
                bail!("`packer validate` failed for {wm} (see above)");
            }
        }
        if launcher_deb.is_none() {
            eprintln!(
                "note: no launcher package in {}, so only the syntax was validated; \
                 `cargo xtask slurm-image launcher --fetch` or copying one there allows a full check",
                host.show(&host.build_dir)
            );
        }
        println!("template is formatted and valid");
        Ok(())
    }
}
