//! `launcher`: the launcher packages in build/ and the newest release, and fetching it.

use anyhow::bail;
use clap::Args;
use xshell::Shell;

use crate::commands::{HelpFooter, ARTIFACTORY_ENVIRONMENT};
use crate::edges::artifactory::{self, Artifactory};
use crate::host::HostTree;
use crate::model::launcher_version::LauncherPackage;
use crate::steps::host_files::load_config;
use crate::steps::launcher::{fetch, local_packages, off_vpn_help};
use crate::term::{approved, is_interactive};

/// Show the launcher packages in build/ and the newest release; `--fetch` fetches it.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("launcher", "the packages in build/ and the newest release"),
        ("launcher --fetch", "download the newest release into build/"),
        ("launcher --fetch --yes", "and replace an older one without asking"),
    ],
    environment: ARTIFACTORY_ENVIRONMENT,
    config: &["artifactory.url"],
}.render())]
pub struct Launcher {
    /// Download the newest release into build/ (verified against the server's sha256).
    #[arg(long)]
    pub fetch: bool,
    /// With --fetch: replace an older local package without asking.
    #[arg(long, requires = "fetch")]
    pub yes: bool,
}

impl Launcher {
    pub fn run(self, _sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let config = load_config(host)?;
        let local = local_packages(host)?;
        if local.is_empty() {
            println!(
                "local: no launcher package in {}",
                host.show(&host.build_dir)
            );
        }
        for package in &local {
            println!(
                "local: {} ({})",
                package.version,
                host.show(&host.build_dir.join(&package.file_name))
            );
        }
        let client = Artifactory::from_env(&config.artifactory.url)?;
        let newest = match client.newest_release() {
            Ok(Some(newest)) => newest,
            Ok(None) => bail!(
                "no launcher release (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {}: check artifactory.url in the config or {}",
                client.folder(),
                artifactory::URL_VAR
            ),
            Err(err) if artifactory::is_unreachable(&err) && local.is_empty() => {
                let slow = artifactory::is_slow(&err);
                return Err(anyhow::anyhow!(off_vpn_help(host, &format!("{err:#}"), slow, false)));
            }
            Err(err) if artifactory::is_unreachable(&err) => {
                let unchecked = format!(
                    "{err:#}: the newest release could not be checked ({}); {}",
                    artifactory::reach_advice(artifactory::is_slow(&err)),
                    what_builds_use(host, &local)
                );
                // Asked to download, and nothing was: a failure. Asked only to show, the command
                // has shown what builds use, which works off the VPN, so it warns and succeeds: a
                // script that lists before building is not stopped by a usable build/.
                if self.fetch {
                    bail!("nothing fetched: {unchecked}");
                }
                eprintln!("warning: {unchecked}");
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        println!(
            "newest release: {} ({})",
            newest.version,
            client.url_of(&newest)
        );
        let older: Vec<&LauncherPackage> = local
            .iter()
            .filter(|p| p.version < newest.version)
            .collect();
        if local.iter().any(|p| p.version >= newest.version) {
            println!(
                "{} already holds {}, which is the newest release or newer",
                host.show(&host.build_dir),
                local[0].file_name
            );
            return Ok(());
        }
        if !self.fetch {
            println!("to fetch it: cargo xtask slurm-image launcher --fetch");
            return Ok(());
        }
        if !older.is_empty() {
            let names = older
                .iter()
                .map(|p| p.file_name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let question = format!("replace {names} with {}?", newest.file_name);
            if !approved(self.yes, &question)? {
                if !is_interactive() {
                    bail!(
                        "{} holds the older {names}: rerun with --yes to replace it with {} (no terminal to ask on)",
                        host.show(&host.build_dir),
                        newest.file_name
                    );
                }
                println!("kept {names}");
                return Ok(());
            }
        }
        fetch(host, &client, &newest, &older)?;
        Ok(())
    }
}

/// What a build without --launcher does with the local packages (at least one).
fn what_builds_use(host: &HostTree, local: &[LauncherPackage]) -> String {
    let build_dir = host.show(&host.build_dir);
    match local {
        [one] => format!(
            "builds use the {} in {build_dir} (`build --offline` does not look for releases)",
            one.file_name
        ),
        _ => format!(
            "{build_dir} holds {} packages, so builds stop until only one is left, or are given \
             one with --launcher PATH",
            local.len()
        ),
    }
}
