//! `save` and `load`: berth's archives are docker-archive + OCI layout, and berth reads both.

use std::process::Command;

use berth_tests::Berth;
use serde_json::Value;

fn inspect(b: &Berth, name: &str) -> Value {
    serde_json::from_str::<Value>(&b.ok(["image", "inspect", name])).unwrap()[0].clone()
}

fn tar_listing(path: &std::path::Path) -> Vec<String> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[test]
fn save_writes_docker_archive_and_oci_layout() {
    let b = Berth::new();
    let id = b.import_busybox("busybox:1");
    let out = b.dir().join("saved.tar");
    b.ok([
        "save".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        "busybox:1".as_ref(),
    ]);
    let names = tar_listing(&out);
    for required in [
        "manifest.json",
        "index.json",
        "oci-layout",
        &format!("blobs/sha256/{}", &id[7..]),
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "{required} missing from {names:?}"
        );
    }
    let unpacked = tempfile::tempdir().unwrap();
    assert!(Command::new("tar")
        .arg("-C")
        .arg(unpacked.path())
        .arg("-xf")
        .arg(&out)
        .status()
        .unwrap()
        .success());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(unpacked.path().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["busybox:1"]));
    assert_eq!(manifest[0]["Config"], format!("blobs/sha256/{}", &id[7..]));
    let index: Value =
        serde_json::from_slice(&std::fs::read(unpacked.path().join("index.json")).unwrap())
            .unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "docker.io/library/busybox:1"
    );

    if which("oci-image-tool") {
        let status = Command::new("oci-image-tool")
            .args(["validate", "--type", "image", "--ref", "name=1"])
            .arg(unpacked.path())
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "oci-image-tool rejected the layout: {}{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&status.stderr)
        );
    } else {
        eprintln!("oci-image-tool not installed: layout validation skipped");
    }

    let stdout = b.command(["save", "busybox:1"]).output().unwrap();
    assert!(stdout.status.success());
    assert_eq!(
        stdout.stdout,
        std::fs::read(&out).unwrap(),
        "save is deterministic"
    );
}

#[test]
fn save_then_load_round_trips_into_a_fresh_store() {
    let b = Berth::new();
    let id = b.import_busybox("busybox:1");
    b.ok(["tag", "busybox:1", "localhost:5000/team/app:2"]);
    let out = b.dir().join("two.tar");
    b.ok([
        "save".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        "busybox:1".as_ref(),
        "localhost:5000/team/app:2".as_ref(),
    ]);

    let other = Berth::new();
    let loaded = other.ok(["load".as_ref(), "-i".as_ref(), out.as_os_str()]);
    assert!(loaded.contains("Loaded image: busybox:1"), "{loaded}");
    assert!(
        loaded.contains("Loaded image: localhost:5000/team/app:2"),
        "{loaded}"
    );
    let doc = inspect(&other, "busybox:1");
    assert_eq!(doc["Id"], id);
    assert_eq!(doc["RootFS"], inspect(&b, "busybox:1")["RootFS"]);
    assert_eq!(doc["Config"], inspect(&b, "busybox:1")["Config"]);

    // Gzipped, from stdin, quiet.
    let gz = b.dir().join("two.tar.gz");
    assert!(Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c {} > {}", out.display(), gz.display()))
        .status()
        .unwrap()
        .success());
    let third = Berth::new();
    let run = third.run_with_input(["load", "-q"], &std::fs::read(&gz).unwrap());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(inspect(&third, "localhost:5000/team/app:2")["Id"], id);
}

#[test]
fn load_reads_legacy_docker_archives_and_rejects_tampering() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let saved = b.dir().join("saved.tar");
    b.ok([
        "save".as_ref(),
        "-o".as_ref(),
        saved.as_os_str(),
        "busybox".as_ref(),
    ]);
    let work = tempfile::tempdir().unwrap();
    assert!(Command::new("tar")
        .arg("-C")
        .arg(work.path())
        .arg("-xf")
        .arg(&saved)
        .status()
        .unwrap()
        .success());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(work.path().join("manifest.json")).unwrap()).unwrap();
    let config_path = manifest[0]["Config"].as_str().unwrap().to_string();
    let layer_path = manifest[0]["Layers"][0].as_str().unwrap().to_string();

    // Legacy layout: <id>.json and <dir>/layer.tar, no index.json.
    let legacy = tempfile::tempdir().unwrap();
    let config_hex = config_path.trim_start_matches("blobs/sha256/");
    std::fs::copy(
        work.path().join(&config_path),
        legacy.path().join(format!("{config_hex}.json")),
    )
    .unwrap();
    std::fs::create_dir(legacy.path().join("layerdir")).unwrap();
    std::fs::copy(
        work.path().join(&layer_path),
        legacy.path().join("layerdir/layer.tar"),
    )
    .unwrap();
    let legacy_manifest = serde_json::json!([{ "Config": format!("{config_hex}.json"), "RepoTags": ["legacy:1"], "Layers": ["layerdir/layer.tar"] }]);
    std::fs::write(
        legacy.path().join("manifest.json"),
        legacy_manifest.to_string(),
    )
    .unwrap();
    let legacy_tar = b.dir().join("legacy.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(legacy.path())
        .arg("-cf")
        .arg(&legacy_tar)
        .arg(".")
        .status()
        .unwrap()
        .success());
    let fresh = Berth::new();
    assert!(fresh
        .ok(["load".as_ref(), "-i".as_ref(), legacy_tar.as_os_str()])
        .contains("Loaded image: legacy:1"));

    // A layer whose bytes do not match its digest is refused and nothing is stored.
    let layer_file = work.path().join(&layer_path);
    let mut bytes = std::fs::read(&layer_file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&layer_file, bytes).unwrap();
    let tampered = b.dir().join("tampered.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(work.path())
        .arg("-cf")
        .arg(&tampered)
        .arg(".")
        .status()
        .unwrap()
        .success());
    let victim = Berth::new();
    let run = victim.fails(["load".as_ref(), "-i".as_ref(), tampered.as_os_str()]);
    assert!(
        run.stderr.contains("mismatch") || run.stderr.contains("digest"),
        "{}",
        run.stderr
    );
    assert_eq!(victim.ok(["images", "-q"]), "");
    assert_eq!(
        std::fs::read_dir(victim.root().join("layers"))
            .unwrap()
            .count(),
        0
    );
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Docker interop runs only where ../shared/anchors/start.sh started a daemon.
fn docker() -> Option<Command> {
    let socket =
        std::env::var("ANCHORS").unwrap_or_else(|_| "/tmp/anchors".into()) + "/docker.sock";
    if !std::path::Path::new(&socket).exists() || !which("docker") {
        return None;
    }
    let mut cmd = Command::new("docker");
    cmd.arg("-H").arg(format!("unix://{socket}"));
    let ok = Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{socket}"))
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(cmd)
}

#[test]
fn docker_loads_and_runs_what_berth_saves_and_berth_loads_what_docker_saves() {
    let Some(_) = docker() else {
        eprintln!("no Docker daemon (run ../shared/anchors/start.sh docker): interop skipped");
        return;
    };
    let b = Berth::new();
    b.ok([
        "import".as_ref(),
        "-c".as_ref(),
        "CMD [\"/bin/echo\", \"from-berth\"]".as_ref(),
        b.busybox_tar().as_os_str(),
        "berth-interop:1".as_ref(),
    ]);
    let saved = b.dir().join("berth.tar");
    b.ok([
        "save".as_ref(),
        "-o".as_ref(),
        saved.as_os_str(),
        "berth-interop:1".as_ref(),
    ]);
    let load = docker()
        .unwrap()
        .arg("load")
        .arg("-i")
        .arg(&saved)
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "docker load: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    let run = docker()
        .unwrap()
        .args(["run", "--rm", "berth-interop:1"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "from-berth",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let from_docker = b.dir().join("docker.tar");
    let save = docker()
        .unwrap()
        .args(["save", "-o"])
        .arg(&from_docker)
        .arg("berth-interop:1")
        .output()
        .unwrap();
    assert!(save.status.success());
    let fresh = Berth::new();
    fresh.ok(["load".as_ref(), "-i".as_ref(), from_docker.as_os_str()]);
    let docker_doc: Value = serde_json::from_slice(
        &docker()
            .unwrap()
            .args(["image", "inspect", "berth-interop:1"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let ours = inspect(&fresh, "berth-interop:1");
    assert_eq!(ours["Id"], docker_doc[0]["Id"]);
    assert_eq!(ours["RootFS"]["Layers"], docker_doc[0]["RootFS"]["Layers"]);
    let _ = docker()
        .unwrap()
        .args(["rmi", "-f", "berth-interop:1"])
        .output();
}
