//! `orphans`: packer VMs left behind by a killed build, and deleting them.

use std::collections::BTreeMap;

use clap::Args;
use xshell::Shell;

use crate::commands::flags::FormatFlags;
use crate::commands::{HelpFooter, GCLOUD_ENVIRONMENT};
use crate::edges::compute::{self, Instance};
use crate::host::HostTree;
use crate::model::orphans;
use crate::model::records::{self, Record, VmRecord};
use crate::model::time::{format_age, parse_duration, parse_rfc3339};
use crate::model::{list_or_none, verification};
use crate::steps::build_lock;
use crate::steps::host_files::load_config;
use crate::steps::survey::now;
use crate::term;

/// What packer writes into the description of every VM it starts.
const PACKER_DESCRIPTION: &str = "New instance created by Packer";

/// A verification VM a killed build left (GCE's fuse deletes it in any case, later).
fn is_verification_vm(vm: &Instance) -> bool {
    verification::is_vm(&vm.name, &vm.labels)
}

/// List (and delete) VMs that packer, or a verification, left behind.
///
/// Packer's VMs are named `packer-*` and described "New instance created by Packer"; a
/// verification's carry the label `slurm-image=verification`. Only those older than the
/// threshold are listed, and other VMs are never listed or touched. A VM created after a
/// build running on this machine started is kept: it may be that build's.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("orphans", "packer VMs older than 4 hours"),
        ("orphans --older-than 30m --delete", "delete those older than 30 minutes, after a yes"),
        ("orphans --older-than 10m --allow-young", "younger than the 30-minute floor: builds may still run them"),
    ],
    environment: &[GCLOUD_ENVIRONMENT],
    config: &["gcp.project"],
}.render())]
pub struct Orphans {
    /// Only VMs older than this: whole minutes, hours or days, as `90m`, `4h` or `2d`.
    // A value starting with `-` is taken as the value, so `-1h` meets the duration's own
    // message rather than clap's "unexpected argument '-1'".
    #[arg(long, value_name = "DURATION", default_value = "4h", value_parser = OlderThan::parse,
          allow_hyphen_values = true)]
    pub older_than: OlderThan,
    /// Delete the VMs found (after a yes at the terminal, or with --yes).
    #[arg(long)]
    pub delete: bool,
    /// With --delete: delete without asking.
    #[arg(long, requires = "delete")]
    pub yes: bool,
    /// Take an --older-than below 30m: VMs that young most likely belong to builds running now.
    #[arg(long)]
    pub allow_young: bool,
    #[command(flatten)]
    pub output: FormatFlags,
}

/// With `--format json`: a record per VM found, `deleted` for those of `deleted` (zone, name),
/// then the result naming the VMs deleted.
fn write_records(found: Vec<VmRecord>, deleted: &[(String, String)], result: bool) {
    for mut record in found {
        record.deleted = deleted
            .iter()
            .any(|(zone, name)| *zone == record.zone && *name == record.vm);
        crate::output::record(&Record::Vm(record));
    }
    if result {
        crate::output::record(&Record::Result(records::Outcome {
            deleted: Some(deleted.iter().map(|(_, name)| name.clone()).collect()),
            ..records::Outcome::done("orphans")
        }));
    }
}

/// `--older-than`: the duration as the user wrote it, to repeat it in messages, and in seconds.
#[derive(Clone, Debug)]
pub struct OlderThan {
    text: String,
    seconds: u64,
}

impl OlderThan {
    /// A clap value parser, so a bad duration is a usage error like any other (exit 2).
    fn parse(text: &str) -> anyhow::Result<OlderThan> {
        Ok(OlderThan {
            seconds: parse_duration(text)?,
            text: text.trim().to_string(),
        })
    }
}

impl std::fmt::Display for OlderThan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Orphans {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        self.output.start();
        let threshold = self.older_than.seconds;
        orphans::check_threshold(&self.older_than.text, threshold, self.allow_young)?;
        let config = load_config(host)?;
        let gcloud = compute::connect(sh, &config.gcp.project)?;
        let now = now();
        let mut found: Vec<(Instance, i64)> = gcloud
            .list_instances()?
            .into_iter()
            .filter(|vm| {
                (vm.name.starts_with("packer-") && vm.description == PACKER_DESCRIPTION)
                    || is_verification_vm(vm)
            })
            .filter_map(|vm| {
                // A VM of unknown age is not reported: it cannot be shown to be old enough.
                let created = parse_rfc3339(&vm.creation_timestamp)?;
                let age = now - created;
                (age > i64::try_from(threshold).unwrap_or(i64::MAX)).then_some((vm, created))
            })
            .collect();
        found.sort_by(|(a, _), (b, _)| (&a.zone, &a.name).cmp(&(&b.zone, &b.name)));
        // Looked at after the list, so that a build started meanwhile is seen.
        let running = build_lock::running(host)?;
        let (kept, orphans): (Vec<_>, Vec<_>) = found
            .into_iter()
            .map(|(vm, created)| (orphans::owner(created, &running), vm, now - created))
            .partition(|(owner, _, _)| owner.is_some());
        // The records, in the listing's order (zone, then name), the kept ones among them.
        let mut found: Vec<VmRecord> = kept
            .iter()
            .chain(&orphans)
            .map(|(owner, vm, age)| {
                let kind = if is_verification_vm(vm) {
                    "verification"
                } else {
                    "packer"
                };
                VmRecord {
                    vm: vm.name.clone(),
                    zone: vm.zone.clone(),
                    created: vm.creation_timestamp.clone(),
                    age_seconds: *age,
                    status: vm.status.clone(),
                    kind,
                    orphan: owner.is_none(),
                    why: match owner {
                        Some(owner) => owner.reason(),
                        None => format!("a {kind} VM older than {}", self.older_than),
                    },
                    deleted: false,
                }
            })
            .collect();
        found.sort_by(|a, b| (&a.zone, &a.vm).cmp(&(&b.zone, &b.vm)));
        for (owner, vm, age) in &kept {
            if let Some(owner) = owner {
                outln!(
                    "kept {} ({}, {}): {}",
                    vm.name,
                    vm.zone,
                    format_age(*age),
                    owner.reason()
                );
            }
        }
        let orphans: Vec<(Instance, i64)> =
            orphans.into_iter().map(|(_, vm, age)| (vm, age)).collect();
        if orphans.is_empty() {
            outln!(
                "no {}packer VMs older than {} in project {}",
                if kept.is_empty() { "" } else { "other " },
                self.older_than,
                gcloud.project()
            );
            write_records(found, &[], true);
            return Ok(());
        }
        outln!(
            "packer VMs older than {} in project {}:",
            self.older_than,
            gcloud.project()
        );
        for (vm, age) in &orphans {
            outln!(
                "  {}  {}  {:>7}  {}",
                vm.name,
                vm.zone,
                format_age(*age),
                vm.status
            );
        }
        if !self.delete {
            outln!(
                "delete them with `cargo xtask slurm-image orphans --older-than {} --delete`",
                self.older_than
            );
            write_records(found, &[], true);
            return Ok(());
        }
        let question = format!(
            "Delete these {} VM(s) from project {}?",
            orphans.len(),
            gcloud.project()
        );
        if !term::approved(self.yes, &question)? {
            outln!("nothing deleted: run again with --yes to delete them");
            write_records(found, &[], true);
            return Ok(());
        }
        let mut by_zone: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (vm, _) in &orphans {
            by_zone.entry(&vm.zone).or_default().push(vm.name.clone());
        }
        let mut deleted: Vec<String> = Vec::new();
        let mut deleted_in: Vec<(String, String)> = Vec::new();
        for (zone, names) in &by_zone {
            if let Err(err) = gcloud.delete_instances(zone, names) {
                write_records(found, &deleted_in, false);
                return Err(err.context(format!(
                    "deleting the packer VMs of {zone} failed (deleted before it: {})",
                    list_or_none(&deleted)
                )));
            }
            deleted.extend(names.iter().cloned());
            deleted_in.extend(names.iter().map(|name| (zone.to_string(), name.clone())));
        }
        outln!("deleted {} VM(s): {}", deleted.len(), deleted.join(", "));
        write_records(found, &deleted_in, true);
        Ok(())
    }
}
