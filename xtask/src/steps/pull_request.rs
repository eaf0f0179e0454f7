//! `release --pr`: where the pull request goes, checked before the release starts, and the push
//! and `gh pr create` after its commit.

use anyhow::{bail, Context};
use xshell::Shell;

use crate::edges::gh::{self, Readiness};
use crate::edges::git;
use crate::host::{write_state_file, HostTree};
use crate::model::release::{pull_request_body, pull_request_commands, pull_request_title};
use crate::model::release_plan::Target;
use crate::model::verification::Verified;
use crate::model::WorkloadManager;

/// Where a release's pull request goes, and whether gh can open it.
pub struct PullRequest {
    /// The branch it merges into: the one the release started from.
    pub base: String,
    /// The remote `base` tracks, where the release branch is pushed.
    pub remote: String,
    gh: Readiness,
}

/// What `--pr` did after the commit.
pub enum Opened {
    /// Pushed to the remote, and the pull request's address.
    Opened { remote: String, url: String },
    /// gh could not open it: the exact commands that do, for a person.
    ByHand(String),
}

impl PullRequest {
    /// Finds the base and its remote, and asks gh whether it is logged in, before any work: a
    /// base that cannot be known stops the release; gh that cannot open the pull request is
    /// said now, and its commands are printed at the end.
    pub fn prepare(sh: &Shell, host: &HostTree, target: &Target) -> anyhow::Result<PullRequest> {
        let base = match target {
            Target::New { from: Some(from), .. } => from.clone(),
            Target::New { from: None, .. } => bail!(
                "--pr opens the pull request into the branch the release starts from, and HEAD is detached: \
                 check out that branch (`git checkout main`), or leave out --pr"
            ),
            Target::Current(name) => git::release_base(sh, &host.root, name).with_context(|| {
                format!(
                    "--pr opens the pull request into the branch {name} started from, which was not recorded \
                     (it was made before `release` recorded it, or by hand): leave out --pr and open it with \
                     `gh pr create --base BRANCH --head {name}`"
                )
            })?,
        };
        let Some(remote) = git::tracked_remote(sh, &host.root, &base) else {
            bail!(
                "--pr pushes the release branch to the remote {base} tracks, and {base} tracks none: set it \
                 (`git branch --set-upstream-to=origin/{base} {base}`), or leave out --pr"
            );
        };
        let gh = gh::readiness(sh);
        match &gh {
            Readiness::Ready => {}
            Readiness::Missing => errln!(
                "pull request: gh is not on PATH, so the release will not open it; the commands that do are \
                 printed at the end ({})",
                gh::INSTALL_HINT
            ),
            Readiness::NotLoggedIn(said) => errln!(
                "pull request: gh is not logged in (`gh auth status`: {said}), so the release will not open it; \
                 the commands that do are printed at the end (`gh auth login` logs in)"
            ),
        }
        Ok(PullRequest { base, remote, gh })
    }

    /// What a release with `--pr` does after its commit to `branch`, as its dry run says it.
    pub fn planned(&self, branch: &str) -> String {
        let (remote, base) = (&self.remote, &self.base);
        match self.gh {
            Readiness::Ready => format!(
                "then push {branch} to {remote} and open its pull request into {base} with gh, printing its address"
            ),
            _ => format!(
                "then print the commands that push {branch} to {remote} and open its pull request into {base} \
                 (gh cannot, as said above)"
            ),
        }
    }

    /// Writes the body (the commit message, each image's verification with its checks), then
    /// pushes the branch and opens the pull request, or, without gh, says how.
    pub fn open(
        &self,
        sh: &Shell,
        host: &HostTree,
        branch: &str,
        message: &str,
        verified: &[(WorkloadManager, String, Verified)],
    ) -> anyhow::Result<Opened> {
        let body_file = host.state_dir_ready()?.join("release-pr-body.md");
        write_state_file(&body_file, pull_request_body(message, verified).as_bytes())?;
        let title = pull_request_title(message);
        let by_hand = pull_request_commands(
            &self.remote,
            &self.base,
            branch,
            title,
            &host.show(&body_file),
        );
        if self.gh != Readiness::Ready {
            return Ok(Opened::ByHand(by_hand));
        }
        let finish =
            || format!("the release is committed on {branch}; to finish by hand:\n{by_hand}");
        git::push(sh, &host.root, &self.remote, branch).with_context(finish)?;
        let create = gh::pr_create(sh, &self.base, branch, title, &body_file);
        errln!("$ {create}");
        let url = gh::open_pull_request(sh, &host.root, create).with_context(|| {
            format!(
                "{branch} is pushed to {}; to open the pull request by hand:\n{}",
                self.remote,
                by_hand.lines().last().unwrap_or_default()
            )
        })?;
        Ok(Opened::Opened {
            remote: self.remote.clone(),
            url,
        })
    }
}

/// Warns when `base` is behind the branch it tracks: the release branch starts from `base` as
/// it is here, so it would miss what others merged. With `fetch` (a `--pr` release, which
/// needs the remote anyway) the remote is asked first; otherwise the comparison is with what
/// was last fetched.
pub fn warn_if_behind(sh: &Shell, host: &HostTree, base: &str, fetch: bool) {
    let Some(remote) = git::tracked_remote(sh, &host.root, base) else {
        return;
    };
    if fetch {
        if let Err(err) = git::fetch(sh, &host.root, &remote, base) {
            errln!("warning: whether {base} is behind {remote} is not known: {err:#}");
            return;
        }
    }
    if let Some(behind) = git::behind_upstream(sh, &host.root, base).filter(|n| *n > 0) {
        errln!(
            "warning: {base} is {behind} commit(s) behind {remote}: the release branch starts from {base} as it is \
             here, without them; to include them, stop, `git pull`, and start the release again"
        );
    }
}
