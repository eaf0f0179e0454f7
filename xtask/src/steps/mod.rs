//! The steps several commands share: reading the host tree, choosing the launcher, a build from
//! plan to pin, the survey of images.

pub mod build;
pub mod build_lock;
pub mod build_plan;
pub mod consumers;
pub mod fingerprint;
pub mod host_files;
pub mod launcher;
pub mod playbook;
pub mod pull_request;
pub mod release;
pub mod release_plan;
pub mod survey;
pub mod uncommitted;
pub mod verify;
