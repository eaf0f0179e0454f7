//! The flags `build` and `release` share, declared once so that their names, help and meaning
//! cannot drift apart between the two commands.

use std::path::PathBuf;

use clap::Args;

use crate::edges::packer::OnError;
use crate::model::launcher_choice::{Purpose, Wanted};

/// Which launcher package goes into the images.
#[derive(Args)]
pub struct LauncherFlags {
    /// Never contact Artifactory: use the launcher package already in build/ (a release then
    /// does not carry the newest launcher).
    #[arg(long)]
    pub offline: bool,
    /// Use this launcher package (copied into build/) instead of the newest release.
    #[arg(long, value_name = "PATH")]
    pub launcher: Option<PathBuf>,
}

impl LauncherFlags {
    /// The launcher as the flags ask for it; `yes` replaces an older package without asking.
    pub fn wanted(&self, yes: bool, purpose: Purpose) -> Wanted {
        Wanted {
            path: self.launcher.clone(),
            offline: self.offline,
            yes,
            purpose,
        }
    }
}

/// Whether the plan is shown or carried out, and whether to ask first.
#[derive(Args)]
pub struct PlanFlags {
    /// Ask nothing: replace an older launcher package in build/ with the newest release, and
    /// start a release (two packer VMs for about an hour, then a commit).
    #[arg(long)]
    pub yes: bool,
    /// Show the whole plan (the launcher, each source image, the variables, the packer
    /// command, the input fingerprint, reuse or why a build is needed, the verification, the
    /// images.conf change, and for a release the branch and the commit); write, fetch, build
    /// and commit nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What each image's build does about reuse and verification.
#[derive(Args)]
pub struct ImageFlags {
    /// Build even where an image made from the same inputs exists (it would be reused).
    #[arg(long)]
    pub force: bool,
    /// Pin each new image without booting it to run the checks script (the pin is unverified).
    #[arg(long)]
    pub no_verify: bool,
}

/// How the command reports: as text, or as JSON records on stdout.
#[derive(Args)]
pub struct FormatFlags {
    /// `json`: JSON Lines on stdout, one record per line with its `reason` (plan, progress,
    /// check, finding, image, prune, vm, result), the last one the result; the text goes to
    /// stderr.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

impl FormatFlags {
    /// Turns records on, for `json`: call it before the command writes anything.
    pub fn start(&self) {
        if self.format == Format::Json {
            crate::output::records_on_stdout();
        }
    }
}

/// What packer does when a build fails.
#[derive(Args)]
pub struct PackerFlags {
    /// What packer does with its VM when the build fails: `cleanup` deletes it (packer's
    /// default), `abort` keeps it for debugging; the tool then names it, and `orphans` finds
    /// it (it costs until `orphans --delete` deletes it).
    #[arg(long, value_enum, value_name = "WHAT")]
    pub on_error: Option<OnErrorArg>,
}

/// `--on-error` as the command line names it: parsing and its help are the command line's
/// concern, so the edge's [`OnError`] knows nothing of clap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnErrorArg {
    Cleanup,
    Abort,
}

impl PackerFlags {
    pub fn on_error(&self) -> Option<OnError> {
        self.on_error.map(|arg| match arg {
            OnErrorArg::Cleanup => OnError::Cleanup,
            OnErrorArg::Abort => OnError::Abort,
        })
    }

    /// The flag as a `--redo` of a release repeats it.
    pub fn carried(&self) -> Option<&'static str> {
        self.on_error.map(|arg| match arg {
            OnErrorArg::Cleanup => "--on-error=cleanup",
            OnErrorArg::Abort => "--on-error=abort",
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Subcommand;

    use crate::commands::SlurmImage;

    /// A subcommand's help for the flag with this id, as `--help` prints it.
    fn help(command: &str, flag: &str) -> String {
        let slurm_image = SlurmImage::augment_subcommands(clap::Command::new("slurm-image"));
        let command = slurm_image
            .find_subcommand(command)
            .unwrap_or_else(|| panic!("no {command}"));
        let arg = command
            .get_arguments()
            .find(|arg| arg.get_id() == flag)
            .unwrap_or_else(|| panic!("{} has no {flag}", command.get_name()));
        arg.get_help()
            .map(ToString::to_string)
            .unwrap_or_else(|| panic!("{flag} has no help"))
    }

    #[test]
    fn build_and_release_share_each_flag_and_its_help() {
        for flag in [
            "offline",
            "launcher",
            "yes",
            "dry_run",
            "force",
            "no_verify",
            "on_error",
        ] {
            assert_eq!(help("build", flag), help("release", flag), "{flag}");
        }
    }

    #[test]
    fn only_a_release_refuses_offline_beside_a_launcher_package() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            let all = ["cargo xtask", "slurm-image"].iter().chain(args);
            crate::Xtask::try_parse_from(all).map(|_| ())
        };
        let both = [
            "--offline",
            "--launcher",
            "hpe-hpc-launcher_3.3.1-2_amd64.deb",
        ];
        assert!(parse(&[&["build"][..], &both].concat()).is_ok());
        let refused = parse(&[&["release"][..], &both].concat()).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("the argument '--offline' cannot be used with '--launcher <PATH>'"),
            "{refused}"
        );
    }
}
