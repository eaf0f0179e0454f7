//! images, run in-process against the loopback Compute API: deprecated and revoked images shown as
//! such (with `--wide`, their replacement), and `images diff`.

use crate::support::hosts::SLURM_PINNED;
use crate::support::images::{line, Cloud, LABELLED, OLD_A, OLD_PBS, PBS_PINNED, PENDING};
use crate::support::{HostCopy, LAUNCHER, STAND_IN_PACKER};

const DEPRECATED: &str = "det-environments-slurm-ci-1717100000";
const REVOKED: &str = "det-environments-slurm-ci-1717200000";

/// A host copy pinning `SLURM_PINNED`, with a deprecated and a revoked slurm image beside it.
fn host() -> Option<HostCopy> {
    let host = HostCopy::with_images(&[
        (
            SLURM_PINNED,
            &[
                ("bom-launcher", "3_3_0-0"),
                ("bom-slurm", "23_11_4"),
                ("input-fingerprint", "aaaa"),
            ],
        ),
        (DEPRECATED, &[]),
        (
            REVOKED,
            &[
                ("revoked", "2024-06-01"),
                ("bom-launcher", "3_3_1-2"),
                ("bom-slurm", "23_11_4"),
                ("input-fingerprint", "bbbb"),
            ],
        ),
    ]);
    let api = host.api();
    api.set_deprecated(DEPRECATED, Some(1_717_200_000), Some(SLURM_PINNED));
    api.set_deprecated(REVOKED, Some(1_717_300_000), Some(SLURM_PINNED));
    Some(host)
}

#[test]
fn images_lists_deprecated_and_revoked_images_as_such() {
    let Some(host) = host() else { return };
    let out = host.run(&["images"]).ok().stdout;
    assert!(line(&out, DEPRECATED).contains(" DEPRECATED "), "{out}");
    assert!(line(&out, REVOKED).contains(" REVOKED "), "{out}");
    assert!(line(&out, SLURM_PINNED).contains(" READY "), "{out}");
    let requests = host.api().http_requests();
    assert!(
        requests.contains(&"GET /compute/v1/projects/determined-ai/global/images".to_string()),
        "{requests:?}"
    );
}

#[test]
fn images_wide_names_the_image_that_replaces_a_deprecated_one() {
    let Some(host) = host() else { return };
    let out = host.run(&["images", "--wide"]).ok().stdout;
    assert!(
        line(&out, DEPRECATED).contains(&format!("DEPRECATED (replaced by {SLURM_PINNED})")),
        "{out}"
    );
    assert!(
        line(&out, REVOKED).contains(&format!("REVOKED (replaced by {SLURM_PINNED})")),
        "{out}"
    );
}

#[test]
fn images_diff_says_what_differs_one_line_each() {
    let Some(host) = host() else { return };
    let out = host
        .run(&["images", "diff", SLURM_PINNED, REVOKED])
        .ok()
        .stdout;
    let row = |what: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{what} ")))
            .unwrap_or_else(|| panic!("no {what} line\n{out}"))
            .split_whitespace()
            .skip(what.split(' ').count())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("launcher"), "3.3.0-0 -> 3.3.1-2", "{out}");
    assert_eq!(row("slurm"), "same: 23.11.4", "{out}");
    assert_eq!(row("fingerprint"), "aaaa -> bbbb", "{out}");
    assert!(out.lines().last().unwrap().ends_with("differ"), "{out}");
    assert_eq!(host.api().http_requests().len(), 1, "one listing");
}

#[test]
fn images_lists_ours_newest_first_with_marks_and_deletes_nothing() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    // The config's keep is the default: 2 makes some images prunable.
    let config = "tools/slurm/packer/slurm-image.toml";
    cloud.host.write(
        config,
        cloud.host.read(config).replace("keep = 6", "keep = 2"),
    );
    let run = cloud.run(&["images", "--wide"]).ok();
    let out = &run.stdout;
    assert_eq!(
        cloud.api.http_requests(),
        ["GET /compute/v1/projects/determined-ai/global/images"]
    );
    assert!(cloud.api.image_deletions().is_empty());
    assert!(
        out.contains("is not the root of a git repository (")
            && out.contains("no release branches or tags were checked"),
        "{out}"
    );
    assert!(
        !out.contains("ubuntu-custom-1") && !out.contains("det-environments-slurm-1600000000"),
        "{out}"
    );
    // The image's own row: a deprecated image's row names its replacement too.
    let line = |name: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing\n{out}"))
            .to_string()
    };
    assert!(
        line(SLURM_PINNED).contains("[keep: pinned in images.conf]"),
        "{out}"
    );
    assert!(
        line(PBS_PINNED).contains("[keep: pinned in images.conf]"),
        "{out}"
    );
    assert!(line(PBS_PINNED).contains("launcher 3.3.0-1"), "{out}");
    assert!(
        line(LABELLED).contains("branch=release-0-1")
            && line(LABELLED).contains("labelled branch=release-0-1"),
        "{out}"
    );
    assert!(line(PENDING).contains("status PENDING"), "{out}");
    // Outside a git checkout prune deletes nothing, and the marks say so.
    let would = "[would delete; prune needs a git checkout]";
    assert!(
        line(OLD_A).contains(would) && line(OLD_A).contains("launcher 3.3.1-2"),
        "{out}"
    );
    assert!(line(OLD_PBS).contains(would), "{out}");
    assert_eq!(out.matches(would).count(), 3, "{out}");
    assert!(!out.contains("[DELETE]"), "{out}");
    // Grouped by workload manager, newest first.
    // A row starts with its image; a deprecated one names its replacement further on.
    let at = |needle: &str| {
        out.find(&format!("\n  {needle} "))
            .or_else(|| out.find(needle))
            .unwrap()
    };
    assert!(at("slurm images") < at("det-environments-slurm-ci-1717600000"));
    assert!(at("det-environments-slurm-ci-1717600000") < at(OLD_A));
    assert!(at(OLD_A) < at(SLURM_PINNED));
    assert!(at(SLURM_PINNED) < at("pbs images"));
    assert!(at("pbs images") < at(PBS_PINNED));
}

#[test]
fn images_fits_100_columns_with_a_header_and_a_legend_and_widens_on_request() {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher 3.3.1-2",
    );
    // One image with every label a build records, one from before labels, one kept by a label
    // with a long release branch's name, and one in the workload manager without a launcher.
    host.run(&["build", "--offline"]).ok();
    let api = host.api();
    let deb = "HPC slurm testing VM hpe-hpc-launcher_3.3.0-0_amd64.deb";
    api.add_image(
        "det-environments-slurm-ci-1717047568",
        1_717_047_568,
        "READY",
        &[],
        deb,
    );
    api.add_image(
        "det-environments-slurm-ci-1717100000",
        1_717_100_000,
        "READY",
        &[(
            "branch",
            "release-0-1-with-a-very-long-name-for-a-branch-that-keeps-it",
        )],
        deb,
    );
    api.add_image(
        "det-environments-pbs-ci-1717016272",
        1_717_016_272,
        "PENDING",
        &[],
        "no package named",
    );

    let narrow = host.run(&["images"]).ok().stdout;
    for line in narrow.lines().filter(|l| !l.starts_with("note: ")) {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}\n{narrow}",
            line.chars().count()
        );
    }
    let headers: Vec<&str> = narrow
        .lines()
        .filter(|l| l.trim_start().starts_with("IMAGE "))
        .collect();
    assert_eq!(headers.len(), 2, "{narrow}");
    assert!(
        headers[0].contains("AGE") && headers[0].contains("LAUNCHER"),
        "{narrow}"
    );
    let row = |out: &str, name: &str| {
        out.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not listed\n{out}"))
            .to_string()
    };
    let built = row(&narrow, "det-environments-slurm-ci-1800000000");
    assert!(
        built.starts_with("* ") && built.contains(" 3.3.1-2 "),
        "{built}"
    );
    assert!(row(&narrow, "1717047568").starts_with("  "), "{narrow}");
    assert!(
        row(&narrow, "det-environments-pbs-ci-1717016272").contains(" ? "),
        "{narrow}"
    );
    assert!(row(&narrow, "1717100000").ends_with('…'), "{narrow}");
    let legend = narrow
        .find("legend: ")
        .unwrap_or_else(|| panic!("no legend\n{narrow}"));
    for explained in [
        "? when neither names one",
        "pinned: in images.conf",
        "delete?",
        "`*`: the image a build now reuses",
        "--wide",
    ] {
        assert!(
            narrow[legend..].contains(explained),
            "{explained}\n{narrow}"
        );
    }

    let wide = host.run(&["images", "--wide"]).ok().stdout;
    assert!(wide.lines().any(|l| l.chars().count() > 100), "{wide}");
    assert!(
        row(&wide, "det-environments-slurm-ci-1717047568")
            .contains("source ?  det-environments-slurm-ci  no labels"),
        "{wide}"
    );
    assert!(
        row(&wide, "det-environments-slurm-ci-1800000000")
            .contains(&format!("source {}", crate::support::SLURM_SOURCE)),
        "{wide}"
    );
    let legend = wide
        .find("legend: ")
        .unwrap_or_else(|| panic!("no legend\n{wide}"));
    for explained in [
        "`source ?`",
        "`-`",
        "`no labels`",
        "<- a build now reuses it",
    ] {
        assert!(wide[legend..].contains(explained), "{explained}\n{wide}");
    }
}

#[test]
fn images_explains_the_reuse_mark_only_where_a_row_carries_it() {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher 3.3.1-2",
    );
    // Images made before labels: none is from today's inputs, so no row is marked.
    host.api().add_image(
        "det-environments-slurm-ci-1717047568",
        1_717_047_568,
        "READY",
        &[],
        "HPC slurm testing VM hpe-hpc-launcher_3.3.0-0_amd64.deb",
    );
    for args in [&["images"][..], &["images", "--wide"]] {
        let out = host.run(args).ok().stdout;
        assert!(out.contains("legend: "), "{args:?}\n{out}");
        assert!(
            !out.lines().any(|l| l.starts_with('*')) && !out.contains("a build now reuses"),
            "{args:?}\n{out}"
        );
    }
}
