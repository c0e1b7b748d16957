//! The store under stress: concurrent berth processes, `kill -9` at random moments, and
//! crafted layer tars that try to escape.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use berth_tests::Berth;

/// Every name points at an image whose layers are all present, and every layer directory on
/// disk is a recorded layer. `images` and `inspect` work for every row.
fn assert_consistent(b: &Berth) {
    let ids = b.ok(["images", "-a", "-q", "--no-trunc"]);
    for id in ids.lines() {
        let doc: serde_json::Value = serde_json::from_str(&b.ok(["image", "inspect", id])).unwrap();
        let lower = doc[0]["GraphDriver"]["Data"]["LowerDir"]
            .as_str()
            .unwrap_or("")
            .to_string();
        for dir in lower.split(':').filter(|d| !d.is_empty()) {
            assert!(
                Path::new(dir).join("bin/busybox").exists() || Path::new(dir).is_dir(),
                "missing layer {dir}"
            );
        }
    }
    let db = b.root().join("berth.db");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             print(c.execute('PRAGMA integrity_check').fetchone()[0]); \
             print(c.execute('PRAGMA foreign_key_check').fetchall()); \
             print(c.execute('SELECT count(*) FROM tags WHERE image_id NOT IN (SELECT id FROM images)').fetchone()[0])",
        )
        .arg(&db)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, ["ok", "[]", "0"], "database inconsistent: {text}");
}

#[test]
fn concurrent_processes_share_the_store_safely() {
    let b = Berth::new();
    let tar = b.busybox_tar();
    let mut children = Vec::new();
    for i in 0..6 {
        let mut cmd = b.command([
            "import".as_ref(),
            tar.as_os_str(),
            format!("par:{i}").as_ref(),
        ]);
        children.push(
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for i in 0..6 {
        let mut cmd = b.command(["images", "-q"]);
        children.push(
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let _ = i;
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tags = b.ok(["images", "--format", "{{.Tag}}"]);
    assert_eq!(tags.lines().count(), 6, "{tags}");
    // Each import is its own image (its config records when it was made), but the same content
    // is one layer, unpacked once.
    assert_eq!(
        b.ok(["images", "-q"])
            .lines()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        6
    );
    assert_eq!(
        std::fs::read_dir(b.root().join("layers")).unwrap().count(),
        1
    );
    assert_consistent(&b);
}

#[test]
fn kill_9_during_import_tag_and_rmi_leaves_the_store_consistent() {
    let b = Berth::new();
    // A bigger input so that kills land in the middle of unpacking.
    let big = b.dir().join("big.tar");
    let filler: String = "x".repeat(64 * 1024);
    let files: Vec<(String, String)> = (0..400)
        .map(|i| (format!("/data/f{i}"), filler.clone()))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    berth_tests::write_busybox_tar(&big, &refs);
    b.import_busybox("keep");

    for round in 0..8u64 {
        let delay = Duration::from_millis(5 + round * 17);
        for args in [
            vec![
                "import".to_string(),
                big.display().to_string(),
                format!("big:{round}"),
            ],
            vec![
                "tag".to_string(),
                "keep".to_string(),
                format!("moved:{round}"),
            ],
            vec![
                "rmi".to_string(),
                format!("moved:{}", round.saturating_sub(1)),
            ],
        ] {
            let mut child = b
                .command(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(delay);
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_consistent(&b);
    }
    // After the interruptions the same import still works and agrees with a clean store.
    let id = b
        .ok(["import".as_ref(), big.as_os_str(), "big:final".as_ref()])
        .trim()
        .to_string();
    let clean = Berth::new();
    let clean_id = clean
        .ok(["import".as_ref(), big.as_os_str(), "big:final".as_ref()])
        .trim()
        .to_string();
    let layer = |b: &Berth, id: &str| {
        let doc: serde_json::Value = serde_json::from_str(&b.ok(["image", "inspect", id])).unwrap();
        doc[0]["RootFS"]["Layers"].clone()
    };
    assert_eq!(layer(&b, &id), layer(&clean, &clean_id));
    let dir = layer(&b, &id)[0]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let count = std::fs::read_dir(b.root().join("layers").join(&dir).join("data"))
        .unwrap()
        .count();
    assert_eq!(count, 400, "the unpacked layer is complete");
    b.ok(["image", "prune", "-a", "-f"]);
    assert_consistent(&b);
}

/// Writes a raw tar entry with any name (the tar crate refuses unsafe names on purpose).
fn raw_entry(out: &mut Vec<u8>, name: &str, kind: u8, link: &str, data: &[u8]) {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000755");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    let size = format!("{:011o}", data.len());
    header[124..135].copy_from_slice(size.as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = kind;
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| b as u32).sum();
    let sum = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(sum.as_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

#[test]
fn crafted_layer_tars_cannot_escape() {
    let b = Berth::new();
    let victim = b.dir().join("victim");
    std::fs::create_dir(&victim).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", {
            let mut t = Vec::new();
            raw_entry(&mut t, "../../../../victim/pwned", b'0', "", b"x");
            t
        }),
        ("symlink-parent", {
            let mut t = Vec::new();
            raw_entry(&mut t, "evil", b'2', &victim.display().to_string(), b"");
            raw_entry(&mut t, "evil/pwned", b'0', "", b"x");
            t
        }),
        ("symlink-relative", {
            let mut t = Vec::new();
            raw_entry(&mut t, "up", b'2', "../../../../../../../../", b"");
            raw_entry(
                &mut t,
                &format!("up{}/pwned", victim.display()),
                b'0',
                "",
                b"x",
            );
            t
        }),
        ("hardlink-out", {
            let mut t = Vec::new();
            raw_entry(&mut t, "passwd", b'1', "../../../../../../etc/passwd", b"");
            t
        }),
    ];
    for (name, mut tar) in cases {
        tar.extend_from_slice(&[0u8; 1024]);
        let path = b.dir().join(format!("{name}.tar"));
        std::fs::write(&path, &tar).unwrap();
        let run = b.run(["import".as_ref(), path.as_os_str(), name.as_ref()]);
        assert_ne!(run.code, 0, "{name}: a malicious layer was accepted");
        assert_eq!(
            std::fs::read_dir(&victim).unwrap().count(),
            0,
            "{name}: wrote outside the layer"
        );
    }
    assert_eq!(b.ok(["images", "-q"]), "");
    assert_eq!(
        std::fs::read_dir(b.root().join("layers")).unwrap().count(),
        0
    );
}
