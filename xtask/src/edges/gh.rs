//! gh, the GitHub CLI: the only module that runs it; it opens a release's pull request.

use std::path::Path;

use anyhow::Context;
use xshell::{cmd, Cmd, Shell};

/// How to get gh ready, for the line that says it is not.
pub const INSTALL_HINT: &str =
    "install the GitHub CLI (https://cli.github.com: `apt-get install gh`, `brew install gh`) and log in \
     with `gh auth login`";

/// Whether gh can open a pull request here, and if not, why.
#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not on PATH.
    Missing,
    /// On PATH, not logged in: what `gh auth status` said.
    NotLoggedIn(String),
}

/// Asks `gh auth status`, which exits non-zero when no host is logged in.
pub fn readiness(sh: &Shell) -> Readiness {
    let out = match cmd!(sh, "gh auth status").quiet().ignore_status().output() {
        Ok(out) => out,
        Err(_) => return Readiness::Missing,
    };
    if out.status.success() {
        return Readiness::Ready;
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let said = said
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("it exited non-zero");
    Readiness::NotLoggedIn(said.to_string())
}

/// `gh pr create --base BASE --head BRANCH --title TITLE --body-file FILE`.
pub fn pr_create<'a>(
    sh: &'a Shell,
    base: &str,
    branch: &str,
    title: &str,
    body_file: &Path,
) -> Cmd<'a> {
    cmd!(
        sh,
        "gh pr create --base {base} --head {branch} --title {title} --body-file {body_file}"
    )
}

/// Opens the pull request; its address, which gh prints last.
pub fn open_pull_request(sh: &Shell, root: &Path, create: Cmd<'_>) -> anyhow::Result<String> {
    let _dir = sh.push_dir(root);
    let shown = create.to_string();
    let out = crate::output::read_child(create.quiet())
        .with_context(|| format!("opening the pull request (`{shown}`)"))?;
    out.lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with("https://") || line.starts_with("http://"))
        .map(str::to_string)
        .with_context(|| format!("`{shown}` printed no address of a pull request: {out:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pull_request_is_opened_with_the_base_the_branch_a_title_and_a_body_file() {
        let sh = Shell::new().unwrap();
        assert_eq!(
            pr_create(
                &sh,
                "main",
                "slurm-images-2026-11-30",
                "Update the test cluster images",
                Path::new("target/slurm-image/release-pr-body.md"),
            )
            .to_string(),
            "gh pr create --base main --head slurm-images-2026-11-30 --title \"Update the test cluster images\" \
             --body-file target/slurm-image/release-pr-body.md"
        );
    }
}
