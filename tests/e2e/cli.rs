//! The command tree: Docker's names, global flags, help and usage errors.

use berth_tests::Berth;

#[test]
fn version_and_help_work_everywhere() {
    let b = Berth::new();
    assert!(b.ok(["--version"]).contains("berth"));
    assert!(b.ok(["version"]).contains("Version"));
    for args in [
        vec!["--help"],
        vec!["image", "--help"],
        vec!["image", "ls", "--help"],
        vec!["images", "--help"],
        vec!["run", "--help"],
    ] {
        let out = b.ok(args.clone());
        assert!(out.contains("Usage"), "{args:?} has no usage text: {out}");
    }
}

#[test]
fn unknown_command_and_flag_exit_125_with_one_line() {
    let b = Berth::new();
    let run = b.fails(["frobnicate"]);
    assert_eq!(run.code, 125);
    assert!(
        run.stderr.contains("'frobnicate' is not a berth command"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);

    let run = b.fails(["images", "--bogus"]);
    assert_eq!(run.code, 125);
    assert!(
        run.stderr.contains("unknown flag: --bogus"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
}

#[test]
fn short_and_management_forms_are_the_same_command() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let short = b.ok(["images", "-q"]);
    assert_eq!(short, b.ok(["image", "ls", "-q"]));
    assert_eq!(short, b.ok(["image", "list", "-q"]));
    b.ok(["image", "tag", "busybox", "other:1"]);
    assert!(b.ok(["images"]).contains("other"));
    b.ok(["image", "rm", "other:1"]);
    assert!(!b.ok(["images"]).contains("other"));
}

#[test]
fn info_reports_store_and_platforms() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let info: serde_json::Value =
        serde_json::from_str(&b.ok(["info", "--format", "json"])).unwrap();
    assert_eq!(info["Images"], 1);
    assert_eq!(info["DockerRootDir"], b.root().display().to_string());
    assert!(info["Platforms"][0].as_str().unwrap().starts_with("linux/"));
    assert_eq!(b.ok(["info", "--format", "{{.Images}}"]).trim(), "1");
}
