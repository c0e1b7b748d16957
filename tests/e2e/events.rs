//! `events` and `system prune` end to end: the event log a `run --rm` leaves (in order, in
//! Docker's line format), `--filter` and `--format`, following mode, and what `system prune`
//! removes and keeps.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_tests::{is_root, Berth};
use serde_json::Value;

/// Containers, overlay and bridges need root.
macro_rules! needs_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// Now as a unix timestamp with nanoseconds, the way `--since`/`--until` take it.
fn now() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// The events recorded between `since` and now, one line each.
fn events_since(b: &Berth, since: &str, extra: &[&str]) -> Vec<String> {
    let until = now();
    let mut args = vec!["events", "--since", since, "--until", &until];
    args.extend_from_slice(extra);
    b.ok(args).lines().map(str::to_string).collect()
}

/// Docker's `2006-01-02T15:04:05.000000000Z07:00` timestamp.
fn is_docker_time(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() >= 30
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..29)
        && (&t[29..] == "Z" || (t.len() == 35 && matches!(b[29], b'+' | b'-')))
}

#[test]
fn run_rm_leaves_create_start_die_destroy_in_docker_format() {
    needs_root!();
    let b = Berth::with_busybox();
    let since = now();
    // In the foreground `run --rm` returns once the monitor has removed the container.
    b.ok([
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        "web",
        "--label",
        "tier=front",
        "busybox",
        "true",
    ]);
    let lines = events_since(&b, &since, &["--filter", "container=web"]);
    let actions: Vec<&str> = lines
        .iter()
        .map(|l| l.split(' ').nth(2).unwrap_or(""))
        .collect();
    assert_eq!(actions, ["create", "start", "die", "destroy"], "{lines:#?}");
    let id = lines[0].split(' ').nth(3).unwrap();
    assert!(
        id.len() == 64 && id.bytes().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    for line in &lines {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(is_docker_time(time), "{line}");
        let action = rest.split(' ').nth(1).unwrap();
        let attributes = if action == "die" {
            "(exitCode=0, image=busybox, name=web, tier=front)"
        } else {
            "(image=busybox, name=web, tier=front)"
        };
        assert_eq!(
            rest,
            format!("container {action} {id} {attributes}"),
            "{line}"
        );
    }
    // Nothing is printed for a window before anything happened.
    let before = b.ok([
        "events",
        "--since",
        "1h",
        "--until",
        &since,
        "--filter",
        "type=container",
    ]);
    assert_eq!(before, "");
}

#[test]
fn filters_and_formats() {
    needs_root!();
    let b = Berth::with_busybox();
    let since = now();
    b.ok(["volume", "create", "keep"]);
    let run = b.run([
        "run",
        "--network",
        "none",
        "--name",
        "three",
        "--label",
        "tier=back",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    b.ok(["rm", "three"]);
    b.ok(["tag", "busybox", "copy:1"]);

    let json = events_since(
        &b,
        &since,
        &[
            "--filter",
            "event=die",
            "--filter",
            "container=three",
            "--format",
            "{{json .}}",
        ],
    );
    assert_eq!(json.len(), 1, "{json:#?}");
    let doc: Value = serde_json::from_str(&json[0]).unwrap();
    assert_eq!(doc["Type"], "container");
    assert_eq!(doc["Action"], "die");
    assert_eq!(doc["status"], "die");
    assert_eq!(doc["from"], "busybox");
    assert_eq!(doc["scope"], "local");
    assert_eq!(doc["Actor"]["Attributes"]["exitCode"], "3");
    assert_eq!(doc["Actor"]["Attributes"]["name"], "three");
    assert_eq!(doc["Actor"]["ID"], doc["id"]);
    assert_eq!(
        doc["time"].as_i64().unwrap(),
        doc["timeNano"].as_i64().unwrap() / 1_000_000_000
    );
    // Docker's field order.
    assert!(
        json[0].starts_with(r#"{"status":"die","id":""#),
        "{}",
        json[0]
    );
    assert!(json[0].contains(r#""Type":"container","Action":"die","Actor":"#));

    let template = |filters: &[&str]| {
        let mut args = filters.to_vec();
        args.extend(["--format", "{{.Type}} {{.Action}} {{.Actor.ID}}"]);
        events_since(&b, &since, &args)
    };
    assert_eq!(
        template(&["--filter", "type=volume"]),
        ["volume create keep"]
    );
    let image = template(&["--filter", "type=image"]);
    assert_eq!(image.len(), 1, "{image:#?}");
    assert!(image[0].starts_with("image tag sha256:"), "{image:#?}");
    // Labels, and keys AND-ed while values of one key are OR-ed.
    let back = template(&["--filter", "label=tier=back"]);
    let actions: Vec<&str> = back.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(actions, ["create", "start", "die", "destroy"], "{back:#?}");
    assert!(template(&["--filter", "label=tier=front"]).is_empty());
    let either = template(&["--filter", "event=create", "--filter", "event=destroy"]);
    assert_eq!(
        either.len(),
        3,
        "volume create, container create and destroy: {either:#?}"
    );
    assert!(template(&["--filter", "type=volume", "--filter", "event=destroy"]).is_empty());

    // Bad input: one clear line, non-zero.
    let bad = b.fails(["events", "--until", "0s", "--filter", "colour=red"]);
    assert!(
        bad.stderr.contains("invalid filter 'colour'"),
        "{}",
        bad.stderr
    );
    let bad = b.fails(["events", "--until", "0s", "--format", "{{.Type"]);
    assert_eq!(bad.code, 64, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("Error parsing format"),
        "{}",
        bad.stderr
    );
}

#[test]
fn following_prints_what_happens_after_it_started() {
    needs_root!();
    let b = Berth::new();
    b.ok(["volume", "create", "before"]);
    let mut child = b
        .command(["events", "--filter", "type=volume"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("berth events runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Events recorded after `events` started are streamed; the one before is not (no
    // --since). The follower may still be opening the store: keep acting until it shows up.
    let mut seen = None;
    for i in 0..100 {
        b.ok(["volume", "create", &format!("after{i}")]);
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen = Some(line);
            break;
        }
    }
    // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let _ = reader.join();
    let line = seen.expect("the follower printed the new event");
    assert!(line.contains(" volume create after"), "{line}");
    assert!(!line.contains("before"), "{line}");
    assert_eq!(status.code(), Some(0), "SIGTERM ends following cleanly");
}

/// The names of every container, network, volume and image, for before/after comparisons.
fn inventory(b: &Berth) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
    let lines = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = b.ok(args).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    (
        lines(&["ps", "-a", "--format", "{{.Names}}"]),
        lines(&["network", "ls", "--format", "{{.Name}}"]),
        lines(&["volume", "ls", "-q"]),
        lines(&["images", "-a", "--format", "{{.Repository}}:{{.Tag}}"]),
    )
}

/// A second one-layer image: the busybox fixture plus a file, so its ID differs.
fn import_variant(b: &Berth, name: &str, file: &str) {
    let tar = b.dir().join(format!("{file}.tar"));
    berth_tests::write_busybox_tar(&tar, &[(file, file)]);
    b.ok(["import".as_ref(), tar.as_os_str(), name.as_ref()]);
}

/// busybox, a stopped container, and `other` naming first one image then another: the first
/// is left dangling.
fn with_stopped_and_dangling() -> Berth {
    let b = Berth::with_busybox();
    b.ok([
        "create",
        "--network",
        "none",
        "--name",
        "stopped",
        "busybox",
        "true",
    ]);
    import_variant(&b, "other", "one");
    import_variant(&b, "other", "two");
    b
}

#[test]
fn system_prune_removes_what_docker_would_and_keeps_the_rest() {
    needs_root!();
    let b = with_stopped_and_dangling();
    b.ok([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "running",
        "busybox",
        "sleep",
        "600",
    ]);
    b.ok(["network", "create", "spare"]);
    b.ok(["volume", "create", "named"]);
    b.ok([
        "create",
        "--network",
        "none",
        "--name",
        "anon",
        "-v",
        "/data",
        "busybox",
        "true",
    ]);
    b.ok(["rm", "anon"]);
    let (_, _, volumes, images) = inventory(&b);
    assert_eq!(volumes.len(), 2, "named + anonymous: {volumes:?}");
    assert!(images.contains(&"<none>:<none>".to_string()), "{images:?}");
    let anonymous = volumes.iter().find(|v| *v != "named").unwrap().clone();

    let out = b.ok(["system", "prune", "-f"]);
    let stopped_section = out
        .split("\n\n")
        .find(|s| s.starts_with("Deleted Containers:"));
    assert_eq!(
        stopped_section.map(|s| s.lines().count()),
        Some(2),
        "exactly the stopped container: {out}"
    );
    assert!(out.contains("Deleted Networks:\nspare\n\n"), "{out}");
    assert!(out.contains("Deleted Images:\ndeleted: sha256:"), "{out}");
    assert!(!out.contains("Deleted Volumes:"), "{out}");
    assert!(out
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .starts_with("Total reclaimed space: "));

    let (containers, networks, volumes, images) = inventory(&b);
    assert_eq!(containers, ["running"]);
    assert_eq!(networks, ["bridge", "host", "none"]);
    assert_eq!(volumes.len(), 2, "no --volumes: volumes stay: {volumes:?}");
    assert_eq!(images, ["busybox:latest", "other:latest"]);

    let out = b.ok(["system", "prune", "-f", "--volumes"]);
    assert!(
        out.contains(&format!("Deleted Volumes:\n{anonymous}\n\n")),
        "{out}"
    );
    let (_, _, volumes, _) = inventory(&b);
    assert_eq!(volumes, ["named"], "named volumes survive --volumes");

    // -a: every image no container uses; the running container's image stays.
    let out = b.ok(["system", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: other:latest"), "{out}");
    let (containers, _, _, images) = inventory(&b);
    assert_eq!(containers, ["running"]);
    assert_eq!(images, ["busybox:latest"]);

    // The events of what was pruned are in the log.
    let log = b.ok([
        "events",
        "--since",
        "1h",
        "--until",
        "0s",
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    for expected in [
        "container destroy",
        "network destroy",
        "volume destroy",
        "image delete",
    ] {
        assert!(
            log.lines().any(|l| l == expected),
            "{expected} missing:\n{log}"
        );
    }
    b.ok(["rm", "-f", "running"]);
}

#[test]
fn system_prune_without_force_asks_and_a_no_removes_nothing() {
    needs_root!();
    let b = with_stopped_and_dangling();
    let before = inventory(&b);

    for answer in [&b"n\n"[..], b"", b"yes\n"] {
        let run = b.run_with_input(["system", "prune"], answer);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(
            run.stdout,
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n\nAre you sure you want to continue? [y/N] "
        );
        assert_eq!(inventory(&b), before, "answer {answer:?} removes nothing");
    }

    let run = b.run_with_input(
        ["system", "prune", "-a", "--volumes", "--filter", "label=x"],
        b"N\n",
    );
    assert!(run.stdout.contains("  - all anonymous volumes not used by at least one container\n  - all images without at least one container associated to them\n  - all build cache\n\n  Items to be pruned will be filtered with:\n  - label=x\n\nAre you sure"), "{}", run.stdout);
    assert_eq!(inventory(&b), before);

    let bad = b.fails(["system", "prune", "-f", "--volumes", "--filter", "until=1h"]);
    assert!(bad
        .stderr
        .contains("\"until\" filter is not supported with \"--volumes\""));
    let bad = b.fails(["system", "prune", "-f", "--filter", "colour=red"]);
    assert!(
        bad.stderr.contains("invalid filter 'colour'"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        inventory(&b),
        before,
        "bad input leaves the store as it was"
    );

    let run = b.run_with_input(["system", "prune"], b"y\n");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("Deleted Containers:"), "{}", run.stdout);
    let (containers, _, _, images) = inventory(&b);
    assert!(containers.is_empty());
    assert_eq!(images, ["busybox:latest", "other:latest"]);
}

#[test]
fn system_prune_filters_by_label() {
    needs_root!();
    let b = Berth::with_busybox();
    for (name, label) in [("keep", "team=a"), ("drop", "team=b")] {
        b.ok([
            "create",
            "--network",
            "none",
            "--name",
            name,
            "--label",
            label,
            "busybox",
            "true",
        ]);
    }
    let out = b.ok(["system", "prune", "-f", "--filter", "label=team=b"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    let (containers, _, _, _) = inventory(&b);
    assert_eq!(containers, ["keep"]);
    // Created after `until`: kept.
    b.ok(["system", "prune", "-f", "--filter", "until=1h"]);
    let (containers, _, _, _) = inventory(&b);
    assert_eq!(containers, ["keep"]);
}
