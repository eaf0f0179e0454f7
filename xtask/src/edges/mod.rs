//! The edges: the only places that talk to the programs and servers the tool drives.

pub mod ansible;
pub mod artifactory;
pub mod compute;
pub mod gcloud;
pub mod gh;
pub mod git;
pub mod packer;
