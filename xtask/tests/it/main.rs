//! The integration tests, one binary so that `support/` compiles once: the built xtask run at
//! the process boundary in temporary copies of the host tree. The benchmarks (`bench`,
//! `bench_download`) are ignored tests here, run by `xtask/bench/run.sh`.
// Tests may print: their output is libtest's to capture, not a user's pipe.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../support/mod.rs"]
mod support;

mod bench;
mod bench_download;
mod build;
mod cli;
mod contract;
mod doctor;
mod drop_in;
mod gcloud;
mod hostile_input;
mod images;
mod json;
mod launcher;
mod launcher_choice;
mod logs;
mod orphans;
mod output;
mod packer_real;
mod pin;
mod plan;
mod playbook;
mod prune;
mod pull_request;
mod real_host;
mod real_template;
mod release;
mod reuse;
mod rollback;
mod signals;
mod targets;
mod verify;
