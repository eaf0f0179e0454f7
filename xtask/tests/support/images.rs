//! A project's images as the team leaves them, in the loopback Compute API: [`Cloud`], shared by
//! the gcloud edge's tests (`gcloud.rs`, through the built binary and the real gcloud) and the
//! in-process tests of images, prune, orphans and builds.

use std::process::Command;

use super::compute_api::ComputeApi;
use super::{require_tool, temp_dir, HostCopy, Run, TempDir};

pub const SLURM_PINNED: &str = "det-environments-slurm-ci-1717047568";
pub const PBS_PINNED: &str = "det-environments-pbs-ci-1717016272";
pub const LABELLED: &str = "det-environments-slurm-ci-1717100000";
pub const PENDING: &str = "det-environments-slurm-ci-1717200000";
pub const OLD_A: &str = "det-environments-slurm-ci-1717300000";
pub const OLD_B: &str = "det-environments-slurm-ci-1717400000";
pub const OLD_PBS: &str = "det-environments-pbs-ci-1717010000";

/// A host copy, a Compute API stand-in and a gcloud configuration folder of its own.
pub struct Cloud {
    pub host: HostCopy,
    pub api: ComputeApi,
    pub gcloud_config: TempDir,
}

impl Cloud {
    /// `None` (after a loud skip) on a machine without gcloud; under CI that is a failure.
    pub fn new() -> Option<Cloud> {
        require_tool("gcloud")?;
        let host = HostCopy::new();
        Some(Cloud {
            api: host.api().clone(),
            host,
            gcloud_config: temp_dir("gcloud-config"),
        })
    }

    /// Both workload managers' images as the team leaves them, plus images that are not ours.
    pub fn with_images() -> Option<Cloud> {
        let cloud = Cloud::new()?;
        let deb = "HPC slurm testing VM hpe-hpc-launcher_3.3.1-2_amd64.deb";
        let api = &cloud.api;
        api.add_image(SLURM_PINNED, 1_717_047_568, "READY", &[], deb);
        api.add_image(
            LABELLED,
            1_717_100_000,
            "READY",
            &[("branch", "release-0-1")],
            deb,
        );
        api.add_image(PENDING, 1_717_200_000, "PENDING", &[], deb);
        api.add_image(OLD_A, 1_717_300_000, "READY", &[], deb);
        api.add_image(OLD_B, 1_717_400_000, "READY", &[], deb);
        api.add_image(
            "det-environments-slurm-ci-1717500000",
            1_717_500_000,
            "READY",
            &[],
            deb,
        );
        api.add_image(
            "det-environments-slurm-ci-1717600000",
            1_717_600_000,
            "READY",
            &[],
            deb,
        );
        api.add_image(
            PBS_PINNED,
            1_717_016_272,
            "READY",
            &[],
            "HPC pbs testing VM hpe-hpc-launcher_3.3.0-1_amd64.deb",
        );
        api.add_image(OLD_PBS, 1_717_010_000, "READY", &[], "HPC pbs testing VM");
        api.add_image(
            "det-environments-pbs-ci-1717700000",
            1_717_700_000,
            "READY",
            &[],
            "HPC pbs testing VM",
        );
        api.add_image(
            "det-environments-pbs-ci-1717800000",
            1_717_800_000,
            "READY",
            &[],
            "HPC pbs testing VM",
        );
        // The old ones were deprecated by a prune two months ago: the next deletes them.
        for (old, pin) in [
            (OLD_A, SLURM_PINNED),
            (OLD_B, SLURM_PINNED),
            (OLD_PBS, PBS_PINNED),
        ] {
            api.set_deprecated(old, Some(now() - 60 * 86_400), Some(pin));
        }
        // Not ours: never listed, never deleted, however old.
        api.add_image(
            "ubuntu-custom-1",
            1_600_000_000,
            "READY",
            &[],
            "someone else's",
        );
        api.add_image(
            "det-environments-slurm-1600000000",
            1_600_000_000,
            "READY",
            &[],
            "not a ci image",
        );
        Some(cloud)
    }

    pub fn xtask(&self, args: &[&str]) -> Command {
        let mut cmd = self.host.xtask(args);
        self.api
            .configure(&mut cmd, self.gcloud_config.path(), "determined-ai");
        cmd
    }

    /// One gcloud call reached the API, a list, and nothing was deleted.
    pub fn assert_listed_once_and_deleted_nothing(&self) {
        let requests = self.api.http_requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        assert!(requests[0].starts_with("GET "), "{requests:?}");
        assert!(self.api.image_deletions().is_empty());
    }

    /// The tool in-process, through the Compute seam: for what prune, orphans and images do.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::in_process(self.xtask(args))
    }

    /// The built binary through the real gcloud: for what the gcloud edge itself does.
    pub fn run_binary(&self, args: &[&str]) -> Run {
        Run::of(self.xtask(args))
    }

    /// Makes the host copy a git repository with everything committed on `main`, as a
    /// release engineer's checkout is; prune deletes nothing where it cannot read the branches.
    pub fn commit_host(&self) {
        commit_host(&self.host);
    }

    pub fn git(&self, args: &[&str]) {
        git(&self.host, args);
    }
}

/// Makes the host copy a git checkout with `tools` committed on `main`: prune deletes nothing
/// where it cannot read the release branches.
pub fn commit_host(host: &HostCopy) {
    git(host, &["init", "-q", "-b", "main"]);
    git(host, &["add", "tools"]);
    git(host, &["commit", "-q", "-m", "host"]);
}

/// git in the host copy as the user `t`.
fn git(host: &HostCopy, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(host.root())
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The line of a listing or a plan that names `image`.
pub fn line<'a>(out: &'a str, image: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(image))
        .unwrap_or_else(|| panic!("{image} missing\n{out}"))
}

/// The VMs `orphans` sorts out, `now` being the present in seconds: packer's `packer-aaa` (5 h
/// old, us-central1-c) and `packer-bbb` (3 days, TERMINATED, us-west1-b), which are orphans at
/// the default 4 h; `packer-young` (1 h); and `web-1`, old and described as packer's but not
/// named as packer names its VMs.
pub fn add_packer_vms(api: &ComputeApi, now: i64) {
    let packer = "New instance created by Packer";
    for (zone, name, age, status) in [
        ("us-central1-c", "packer-aaa", 5 * 3600, "RUNNING"),
        ("us-west1-b", "packer-bbb", 3 * 86_400, "TERMINATED"),
        ("us-central1-c", "packer-young", 3600, "RUNNING"),
        ("us-central1-c", "web-1", 9 * 86_400, "RUNNING"),
    ] {
        api.add_instance(zone, name, now - age, status, packer);
    }
}

/// `calls` with the first two in order: a build reads its source image and the project's
/// images side by side, so the two arrive in either order.
pub fn reads_side_by_side(mut calls: Vec<String>) -> Vec<String> {
    let both = calls.len().min(2);
    calls[..both].sort();
    calls
}
