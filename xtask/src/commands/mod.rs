//! The subcommands of `cargo xtask slurm-image`: each reads, calls the pure core, writes and runs.

mod build;
mod check;
mod clean;
mod doctor;
mod flags;
mod fmt;
mod images;
mod init;
mod launcher;
mod orphans;
mod pin;
mod prune;
mod release;
mod rollback;
mod verify;

use clap::Subcommand;
use xshell::Shell;

use crate::host::HostTree;
use crate::model::records::{Outcome, Record};
use crate::model::WorkloadManager;

#[derive(Subcommand)]
pub enum SlurmImage {
    Init(init::Init),
    Fmt(fmt::Fmt),
    Check(check::Check),
    Clean(clean::Clean),
    Build(build::Build),
    Release(release::Release),
    Launcher(launcher::Launcher),
    Images(images::Images),
    Prune(prune::Prune),
    Orphans(orphans::Orphans),
    Verify(verify::Verify),
    Pin(pin::Pin),
    Rollback(rollback::Rollback),
    Doctor(doctor::Doctor),
}

impl SlurmImage {
    /// Runs the command; with `--format json`, a failure still ends with its `result` record.
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let command = self.name();
        crate::output::command_is(command);
        let result = self.dispatch(sh, host);
        if let Err(err) = &result {
            crate::output::record(&Record::Result(Outcome::failed(
                command,
                crate::term::exit::exit_code(err),
                format!("{err:#}"),
            )));
        }
        result
    }

    /// The subcommand's name, as the records say it.
    fn name(&self) -> &'static str {
        match self {
            SlurmImage::Init(_) => "init",
            SlurmImage::Fmt(_) => "fmt",
            SlurmImage::Check(_) => "check",
            SlurmImage::Clean(_) => "clean",
            SlurmImage::Build(_) => "build",
            SlurmImage::Release(_) => "release",
            SlurmImage::Launcher(_) => "launcher",
            SlurmImage::Images(_) => "images",
            SlurmImage::Prune(_) => "prune",
            SlurmImage::Orphans(_) => "orphans",
            SlurmImage::Verify(_) => "verify",
            SlurmImage::Pin(_) => "pin",
            SlurmImage::Rollback(_) => "rollback",
            SlurmImage::Doctor(_) => "doctor",
        }
    }

    fn dispatch(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        match self {
            SlurmImage::Init(cmd) => cmd.run(sh, host),
            SlurmImage::Fmt(cmd) => cmd.run(sh, host),
            SlurmImage::Check(cmd) => cmd.run(sh, host),
            SlurmImage::Clean(cmd) => cmd.run(sh, host),
            SlurmImage::Build(cmd) => cmd.run(sh, host),
            SlurmImage::Release(cmd) => cmd.run(sh, host),
            SlurmImage::Launcher(cmd) => cmd.run(sh, host),
            SlurmImage::Images(cmd) => cmd.run(sh, host),
            SlurmImage::Prune(cmd) => cmd.run(sh, host),
            SlurmImage::Orphans(cmd) => cmd.run(sh, host),
            SlurmImage::Verify(cmd) => cmd.run(sh, host),
            SlurmImage::Pin(cmd) => cmd.run(sh, host),
            SlurmImage::Rollback(cmd) => cmd.run(sh, host),
            SlurmImage::Doctor(cmd) => cmd.run(sh, host),
        }
    }
}

/// A workload manager as the command line names it (`--wm`, `--redo`): parsing and its help
/// are the command line's concern, so the model's [`WorkloadManager`] knows nothing of clap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadManagerArg {
    Slurm,
    Pbs,
}

impl From<WorkloadManagerArg> for WorkloadManager {
    fn from(arg: WorkloadManagerArg) -> WorkloadManager {
        match arg {
            WorkloadManagerArg::Slurm => WorkloadManager::Slurm,
            WorkloadManagerArg::Pbs => WorkloadManager::Pbs,
        }
    }
}

/// The end of every subcommand's `--help`: examples, then the environment variables and the
/// config keys it reads, in that order and one layout, so no subcommand's help drifts from the
/// others. A section a command has nothing for is left out.
pub struct HelpFooter {
    /// `(arguments after "cargo xtask slurm-image", what it does)`.
    pub examples: &'static [(&'static str, &'static str)],
    /// Groups of `(variable, what it is for)`: [`ARTIFACTORY_ENVIRONMENT`],
    /// [`GCLOUD_ENVIRONMENT`].
    pub environment: &'static [&'static [(&'static str, &'static str)]],
    /// The keys of the config file the command reads; empty when it reads none.
    pub config: &'static [&'static str],
}

/// Where the config file sits, as `--help` names it.
const CONFIG_FILE: &str = "tools/slurm/packer/slurm-image.toml";

/// The variables that reach Artifactory, for the commands that look up or fetch a launcher.
pub const ARTIFACTORY_ENVIRONMENT: &[(&str, &str)] = &[
    (
        "ARTIFACTORY_TOKEN",
        "an Artifactory access token (sent as a Bearer token)",
    ),
    (
        "ARTIFACTORY_USER, ARTIFACTORY_PASSWORD",
        "or a user and password, when no token is set",
    ),
    (
        "SLURM_IMAGE_ARTIFACTORY_URL",
        "the folder of launcher releases, instead of artifactory.url (e.g. a mirror)",
    ),
    (
        "SLURM_IMAGE_STALL_TIMEOUT_S",
        "seconds Artifactory may stay silent before a request is tried again (default 30, at most 3600): \
         raise it on a slow link",
    ),
    (
        "SLURM_IMAGE_RETRY_DELAY_MS",
        "the first pause between the four attempts of a request, doubled after each (default 500 ms, at most \
         60000): raise it where the VPN drops and takes a while to come back",
    ),
];

/// The variable that bounds gcloud, for the commands that call it.
pub const GCLOUD_ENVIRONMENT: &[(&str, &str)] = &[(
    "SLURM_IMAGE_GCLOUD_TIMEOUT_S",
    "seconds a gcloud call may take before it is given up (default 60, at most 3600; a delete gets ten \
     times as long): raise it on a slow network",
)];

impl HelpFooter {
    /// The sections as clap prints an option's long help: the name on its own line, what it
    /// is for indented below, so a long command line never pushes the text past 80 columns.
    pub fn render(&self) -> String {
        let mut sections: Vec<String> = Vec::new();
        let mut section = |title: &str, rows: Vec<(String, String)>| {
            if rows.is_empty() {
                return;
            }
            let mut text = format!("{title}:");
            for (name, what) in rows {
                text.push_str(&format!("\n  {name}\n      {what}"));
            }
            sections.push(text);
        };
        section(
            "Examples",
            self.examples
                .iter()
                .map(|(args, what)| (format!("cargo xtask slurm-image {args}"), what.to_string()))
                .collect(),
        );
        section(
            "Environment",
            self.environment
                .iter()
                .flat_map(|group| group.iter())
                .map(|(var, what)| (var.to_string(), what.to_string()))
                .collect(),
        );
        if !self.config.is_empty() {
            section(
                "Config",
                vec![(CONFIG_FILE.to_string(), self.config.join(", "))],
            );
        }
        sections.push(crate::term::exit::help_table());
        sections.join("\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each subcommand reads besides its flags: the Artifactory variables, the config
    /// file. A new subcommand fails the test until it is added here.
    fn reads(name: &str) -> (bool, bool) {
        match name {
            "init" | "fmt" | "clean" => (false, false),
            "check" => (false, true),
            "build" | "release" | "launcher" | "doctor" | "images" | "prune" | "orphans"
            | "verify" | "pin" | "rollback" => (true, true),
            other => panic!("say in `reads` whether {other} reads the environment and the config"),
        }
    }

    /// The subcommands as clap has them, with the text after each one's options.
    fn footers() -> Vec<(String, String)> {
        let slurm_image = SlurmImage::augment_subcommands(clap::Command::new("slurm-image"));
        slurm_image
            .get_subcommands()
            .map(|cmd| {
                let footer = cmd.get_after_help().map(|f| f.to_string());
                let name = cmd.get_name().to_string();
                (
                    name.clone(),
                    footer.unwrap_or_else(|| panic!("{name} has no help footer")),
                )
            })
            .collect()
    }

    #[test]
    fn every_subcommand_has_examples_and_names_what_it_reads() {
        let footers = footers();
        assert!(footers.len() >= 11, "{footers:?}");
        for (name, footer) in &footers {
            let (environment, config) = reads(name);
            let examples = format!("Examples:\n  cargo xtask slurm-image {name}");
            assert!(footer.starts_with(&examples), "{name}:\n{footer}");
            assert_eq!(
                footer.contains("\nEnvironment:\n"),
                environment,
                "{name}:\n{footer}"
            );
            assert_eq!(footer.contains("\nConfig:\n"), config, "{name}:\n{footer}");
        }
        // The whole of every footer, to read and review in one place.
        let all: Vec<String> = footers
            .iter()
            .map(|(name, footer)| format!("## {name}\n{footer}"))
            .collect();
        insta::assert_snapshot!(all.join("\n\n"));
    }

    #[test]
    fn help_footers_share_one_layout() {
        let table = crate::term::exit::help_table();
        let footer = HelpFooter {
            examples: &[("build", "bake it"), ("build --wm pbs", "the same for PBS")],
            environment: &[&[("A_VAR", "what for")]],
            config: &["gcp.project", "prune.keep"],
        };
        assert_eq!(
            footer.render(),
            "Examples:\n\
             \x20 cargo xtask slurm-image build\n\
             \x20     bake it\n\
             \x20 cargo xtask slurm-image build --wm pbs\n\
             \x20     the same for PBS\n\
             \n\
             Environment:\n\
             \x20 A_VAR\n\
             \x20     what for\n\
             \n\
             Config:\n\
             \x20 tools/slurm/packer/slurm-image.toml\n\
             \x20     gcp.project, prune.keep\n\n"
                .to_string()
                + &table
        );
        let bare = HelpFooter {
            examples: &[("clean", "remove build/")],
            environment: &[],
            config: &[],
        };
        assert_eq!(
            bare.render(),
            format!("Examples:\n  cargo xtask slurm-image clean\n      remove build/\n\n{table}")
        );
    }

    #[test]
    fn workload_managers_are_read_in_any_case_and_as_lists() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            let all = ["cargo xtask", "slurm-image"].iter().chain(args);
            match crate::Xtask::try_parse_from(all).map(|x| x.command) {
                Ok(crate::Command::SlurmImage(command)) => command,
                Err(err) => panic!("{args:?}: {err}"),
            }
        };
        let SlurmImage::Build(build) = parse(&["build", "--wm", "PBS"]) else {
            panic!("not build");
        };
        assert_eq!(WorkloadManager::from(build.wm), WorkloadManager::Pbs);
        let SlurmImage::Release(release) = parse(&["release", "--redo", "slurm,pbs"]) else {
            panic!("not release");
        };
        let redo: Vec<WorkloadManager> = release.redo.into_iter().map(Into::into).collect();
        assert_eq!(redo, WorkloadManager::ALL);
    }
}
