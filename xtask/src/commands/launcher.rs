//! `launcher`: the launcher packages in build/ and the newest release, and fetching it.

use anyhow::bail;
use clap::Args;
use xshell::Shell;

use crate::commands::{HelpFooter, ARTIFACTORY_ENVIRONMENT};
use crate::host::HostTree;
use crate::model::launcher_choice::{
    self, builds_use, unchecked, unreadable_line, Decision, Lookup, Purpose, Situation, Wanted,
};
use crate::model::local_packages::RELEASE_NAME;
use crate::steps::host_files::load_config;
use crate::steps::launcher::{build_dir_packages, carry_out, look_up};
use crate::term::is_interactive;

/// Show the launcher packages in build/ and the newest release; `--fetch` fetches it.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("launcher", "the packages in build/ and the newest release"),
        ("launcher --fetch", "download the newest release into build/"),
        ("launcher --fetch --yes", "and replace an older one without asking"),
    ],
    environment: &[ARTIFACTORY_ENVIRONMENT],
    config: &["artifactory.url", "artifactory.min_download_rate_kib_s", "artifactory.download_rate_window_s"],
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
        let packages = build_dir_packages(host)?;
        let local = packages.releases;
        let build_dir = host.show(&host.build_dir);
        if local.is_empty() {
            outln!("local: no launcher package in {build_dir}");
        }
        for package in &local {
            outln!(
                "local: {} ({})",
                package.version,
                host.show(&host.build_dir.join(&package.file_name))
            );
        }
        for package in &packages.unreadable {
            if package.may_be_meant {
                // What builds do, below, says why they stop and how to go on.
                outln!(
                    "local: {build_dir}/{} is not named as a launcher package ({RELEASE_NAME}) and may be \
                     the one meant: builds stop until it is renamed to {} or removed",
                    package.file_name,
                    package.expected
                );
            } else {
                outln!("local: {}", unreadable_line(package, &build_dir));
            }
        }
        let situation = Situation {
            local: &local,
            unreadable: &packages.unreadable,
            build_dir: &build_dir,
            interactive: is_interactive(),
        };
        let lookup = look_up(&config)?;
        match &lookup {
            Lookup::Found { newest, from } => {
                outln!("{} ({})", lookup.newest_line(), from.url_of(newest))
            }
            _ => outln!("{}", lookup.newest_line()),
        }
        let wanted = Wanted {
            yes: self.yes,
            purpose: Purpose::Fetch,
            ..Wanted::default()
        };
        if self.fetch {
            return match launcher_choice::decide(&wanted, &situation, || lookup) {
                Decision::Use { package, .. } => {
                    outln!(
                        "{build_dir} already holds {}, which is the newest release or newer",
                        package.file_name
                    );
                    Ok(())
                }
                decision => carry_out(host, decision, false).map(drop),
            };
        }
        let fetch = launcher_choice::decide(&wanted, &situation, || lookup.as_data());
        match (&lookup, fetch) {
            (Lookup::Found { .. }, fetch) => {
                // What a build would do, decided as `build` decides it, from the same lookup.
                let build = Wanted {
                    purpose: Purpose::Build,
                    ..Wanted::default()
                };
                let for_build = launcher_choice::decide(&build, &situation, || lookup.as_data());
                outln!("{}", for_build.what_builds_do());
                match fetch {
                    Decision::Use { package, .. } => outln!(
                        "{build_dir} already holds {}, which is the newest release or newer",
                        package.file_name
                    ),
                    _ => outln!("to fetch it: cargo xtask slurm-image launcher --fetch"),
                }
                Ok(())
            }
            // Without a release to fetch, showing succeeds when builds can go on with what is
            // here (a script that lists before building is not stopped by a usable build/),
            // and fails as a fetch would when they cannot.
            (Lookup::Unreachable { why, slow }, _) if !local.is_empty() => {
                errln!(
                    "warning: {}",
                    unchecked(why, *slow, &builds_use(&situation))
                );
                Ok(())
            }
            (Lookup::NoRelease { folder }, _) if !local.is_empty() => {
                errln!(
                    "warning: no launcher release (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {folder}; {}",
                    builds_use(&situation)
                );
                Ok(())
            }
            (_, Decision::Refuse { why }) => bail!("{why}"),
            (_, _) => Ok(()),
        }
    }
}
