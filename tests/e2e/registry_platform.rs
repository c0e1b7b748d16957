//! Multi-arch: an OCI index of an amd64 and an arm64 busybox, pulled for the host's platform by
//! default and for the other with `--platform`. The arm64 busybox is Debian's
//! `busybox-static:arm64`, downloaded once into a cache (the test skips when that is impossible).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_tests::{write_busybox_tar, Berth};

use crate::registry::{http, pushed_digest, repo_digest, Auth, RegistryServer};

/// Finds (or downloads) `busybox-static_*_arm64.deb`.
fn arm64_busybox_deb() -> Option<PathBuf> {
    let cache = std::env::temp_dir().join("berth-test-cache");
    std::fs::create_dir_all(&cache).ok()?;
    let find = || {
        std::fs::read_dir(&cache)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                name.starts_with("busybox-static_") && name.ends_with("_arm64.deb")
            })
    };
    if let Some(found) = find() {
        return Some(found);
    }
    let quiet = |cmd: &mut Command| {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let has_arch = Command::new("dpkg")
        .arg("--print-foreign-architectures")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("arm64"));
    if !has_arch {
        quiet(Command::new("dpkg").args(["--add-architecture", "arm64"]));
        quiet(Command::new("apt-get").args(["update", "-qq"]));
    }
    if !quiet(
        Command::new("apt-get")
            .args(["download", "busybox-static:arm64"])
            .current_dir(&cache),
    ) {
        quiet(Command::new("apt-get").args(["update", "-qq"]));
        quiet(
            Command::new("apt-get")
                .args(["download", "busybox-static:arm64"])
                .current_dir(&cache),
        );
    }
    find()
}

/// A rootfs tar holding the arm64 busybox from the .deb.
fn arm64_busybox_tar(deb: &Path, dir: &Path) -> PathBuf {
    let stage = dir.join("arm64-stage");
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(&stage)
        .status()
        .unwrap();
    assert!(status.success(), "dpkg-deb -x failed");
    std::os::unix::fs::symlink("busybox", stage.join("bin/sh")).unwrap();
    let tar = dir.join("busybox-arm64.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&stage)
        .args(["--numeric-owner", "-cf"])
        .arg(&tar)
        .arg("./bin")
        .status()
        .unwrap();
    assert!(status.success(), "tar failed");
    tar
}

fn manifest_size(push_output: &str) -> u64 {
    push_output
        .lines()
        .find_map(|l| l.split(" size: ").nth(1))
        .and_then(|s| s.trim().parse().ok())
        .expect("size in push output")
}

#[test]
fn registry_index_pulls_host_platform_and_platform_flag() {
    if berth_image_host_arch() != "amd64" {
        eprintln!("skipping: the test builds its index from an amd64 host busybox");
        return;
    }
    let Some(deb) = arm64_busybox_deb() else {
        eprintln!("skipping: could not download busybox-static:arm64");
        return;
    };
    let Some(registry) = RegistryServer::start(Auth::None) else {
        return;
    };
    let host = registry.host();
    let a = Berth::new();
    let amd64_tar = a.dir().join("busybox-amd64.tar");
    write_busybox_tar(&amd64_tar, &[]);
    let arm64_tar = arm64_busybox_tar(&deb, a.dir());

    let mut entries = Vec::new();
    for (arch, tar) in [("amd64", &amd64_tar), ("arm64", &arm64_tar)] {
        let name = format!("{host}/multi/busybox:{arch}");
        a.ok([
            "import".as_ref(),
            "--platform".as_ref(),
            format!("linux/{arch}").as_ref(),
            tar.as_os_str(),
            name.as_ref(),
        ]);
        let out = a.ok(["push", &name]);
        let digest = pushed_digest(&out);
        let size = manifest_size(&out);
        let manifest = http(registry.port, "GET", &format!("/v2/multi/busybox/manifests/{digest}"), &[(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )], b"");
        let media_type = manifest.header("Content-Type").unwrap().to_string();
        let mut platform = serde_json::json!({"architecture": arch, "os": "linux"});
        if arch == "arm64" {
            platform["variant"] = "v8".into();
        }
        entries.push(serde_json::json!({"mediaType": media_type, "digest": digest, "size": size, "platform": platform}));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    let put = http(
        registry.port,
        "PUT",
        "/v2/multi/busybox/manifests/latest",
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        &index,
    );
    assert_eq!(
        put.status,
        201,
        "index upload failed: {}",
        String::from_utf8_lossy(&put.body)
    );
    let index_digest = put.header("Docker-Content-Digest").unwrap().to_string();

    let name = format!("{host}/multi/busybox");
    let native = Berth::new();
    native.ok(["pull", &name]);
    let arch = native.ok(["image", "inspect", "--format", "{{.Architecture}}", &name]);
    assert_eq!(arch.trim(), "amd64");
    assert_eq!(
        repo_digest(&native, &name),
        index_digest,
        "the RepoDigest is the index's digest"
    );

    let foreign = Berth::new();
    let out = foreign.ok(["pull", "--platform", "linux/arm64", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    let arch = foreign.ok(["image", "inspect", "--format", "{{.Architecture}}", &name]);
    assert_eq!(arch.trim(), "arm64");

    let wrong = foreign.fails(["pull", "--platform", "linux/s390x", &name]);
    assert!(
        wrong
            .stderr
            .contains("no matching manifest for linux/s390x"),
        "{}",
        wrong.stderr
    );
}

fn berth_image_host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
