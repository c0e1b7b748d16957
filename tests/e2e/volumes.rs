//! Volumes end to end on busybox containers: the `volume` commands, `-v`, `--mount`,
//! `--volumes-from`, image `VOLUME`s, copy of the image's content into new volumes, the local
//! driver's mounts, and mount points that try to leave the container's root.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_tests::{is_root, Berth};
use serde_json::Value;

/// Containers, overlay and mounts need root.
macro_rules! needs_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// The mount points under this installation's temp dir, as the host sees them.
fn mounts_under(b: &Berth) -> Vec<String> {
    let dir = b.dir().to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(dir.as_str()))
        .map(str::to_string)
        .collect()
}

/// Imports an image made of the busybox fixture changed by `setup` (given the unpacked root),
/// with `import -c` `changes`.
fn image_with(b: &Berth, name: &str, changes: &[&str], setup: impl FnOnce(&Path)) {
    let stage = b.dir().join(format!("stage-{name}"));
    fs::create_dir_all(&stage).unwrap();
    let status = Command::new("tar")
        .arg("-C")
        .arg(&stage)
        .arg("-xf")
        .arg(b.busybox_tar())
        .status()
        .unwrap();
    assert!(status.success());
    setup(&stage);
    let tar = b.dir().join(format!("{name}.tar"));
    let status = Command::new("tar")
        .arg("-C")
        .arg(&stage)
        .args(["--numeric-owner", "--xattrs", "-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let mut args: Vec<String> = vec!["import".into()];
    for c in changes {
        args.push("-c".into());
        args.push(c.to_string());
    }
    args.push(tar.display().to_string());
    args.push(name.into());
    b.ok(args);
}

/// A host directory `name` in the test's temp dir holding `file` with `content`.
fn host_dir(b: &Berth, name: &str, file: &str, content: &str) -> PathBuf {
    let dir = b.dir().join(name);
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join(file), content).unwrap();
    dir
}

/// `run --rm --network none ARGS…`: no container here needs a network.
fn run_rm(args: &[&str]) -> Vec<String> {
    ["run", "--rm", "--network", "none"]
        .iter()
        .chain(args)
        .map(|a| a.to_string())
        .collect()
}

fn c_path(path: &Path) -> std::ffi::CString {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap()
}

fn set_xattr(path: &Path, name: &str, value: &str) {
    let name = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let rc = unsafe {
        libc::setxattr(
            c_path(path).as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr {}", std::io::Error::last_os_error());
}

fn get_xattr(path: &Path, name: &str) -> String {
    let name = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let n = unsafe {
        libc::getxattr(
            c_path(path).as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert!(n >= 0, "getxattr {}", std::io::Error::last_os_error());
    String::from_utf8_lossy(&buf[..n as usize]).into_owned()
}

fn inspect_volume(b: &Berth, name: &str) -> Value {
    let out = b.ok(["volume", "inspect", name]);
    serde_json::from_str::<Value>(&out).unwrap()[0].clone()
}

fn mountpoint(b: &Berth, name: &str) -> PathBuf {
    PathBuf::from(inspect_volume(b, name)["Mountpoint"].as_str().unwrap())
}

#[test]
fn named_volume_is_shared_and_outlives_its_containers() {
    needs_root!();
    let b = Berth::with_busybox();
    b.ok([
        "run",
        "--network",
        "none",
        "--name",
        "writer",
        "-v",
        "shared:/data",
        "busybox",
        "sh",
        "-c",
        "echo one > /data/file",
    ]);
    let out = b.ok([
        "run",
        "--network",
        "none",
        "--name",
        "reader",
        "-v",
        "shared:/in:ro",
        "busybox",
        "cat",
        "/in/file",
    ]);
    assert_eq!(out, "one\n");
    b.ok(["rm", "-v", "writer", "reader"]);
    assert_eq!(b.ok(["volume", "ls", "-q"]), "shared\n");
    let out = b.ok(run_rm(&[
        "-v",
        "shared:/data",
        "busybox",
        "cat",
        "/data/file",
    ]));
    assert_eq!(out, "one\n");
    assert_eq!(
        fs::read_to_string(mountpoint(&b, "shared").join("file")).unwrap(),
        "one\n"
    );
    assert_eq!(
        mountpoint(&b, "shared"),
        b.root().join("volumes/shared/_data")
    );
    assert!(mounts_under(&b).is_empty(), "{:?}", mounts_under(&b));
}

#[test]
fn read_only_bind_cannot_be_written() {
    needs_root!();
    let b = Berth::with_busybox();
    let host = host_dir(&b, "host", "seen", "from host\n");
    let spec = format!("{}:/mnt/host:ro", host.display());
    let r = b.run(run_rm(&[
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "cat /mnt/host/seen; echo x > /mnt/host/new",
    ]));
    assert_ne!(r.code, 0);
    assert_eq!(r.stdout, "from host\n");
    assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
    assert!(!host.join("new").exists());
    // Read-write by default; a missing host directory is created, as Docker's -v does.
    let missing = b.dir().join("made/by/run");
    let spec = format!("{}:/w", missing.display());
    b.ok(run_rm(&[
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "echo written > /w/out",
    ]));
    assert_eq!(
        fs::read_to_string(missing.join("out")).unwrap(),
        "written\n"
    );
    assert!(mounts_under(&b).is_empty());
}

#[test]
fn new_volume_is_filled_from_the_image_once() {
    needs_root!();
    let b = Berth::new();
    image_with(&b, "seeded", &[], |root| {
        let data = root.join("data");
        fs::create_dir_all(data.join("sub")).unwrap();
        fs::write(data.join("sub/file"), "from image\n").unwrap();
        symlink("/etc/passwd", data.join("link")).unwrap();
        set_xattr(&data.join("sub/file"), "user.origin", "image");
        Command::new("chown")
            .arg("1234:5678")
            .arg(&data)
            .status()
            .unwrap();
        Command::new("chmod")
            .arg("0750")
            .arg(&data)
            .status()
            .unwrap();
        Command::new("chmod")
            .arg("0604")
            .arg(data.join("sub/file"))
            .status()
            .unwrap();
    });
    b.ok(["volume", "create", "seed"]);
    b.ok(run_rm(&["-v", "seed:/data", "seeded", "true"]));
    let data = mountpoint(&b, "seed");
    let meta = fs::metadata(&data).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1234, 5678, 0o750)
    );
    let file = data.join("sub/file");
    assert_eq!(fs::read_to_string(&file).unwrap(), "from image\n");
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o604);
    assert_eq!(get_xattr(&file, "user.origin"), "image");
    // A symlink is copied as a symlink, never followed.
    assert_eq!(
        fs::read_link(data.join("link")).unwrap(),
        Path::new("/etc/passwd")
    );

    // Emptied by the user, a used volume is not filled again.
    fs::remove_dir_all(data.join("sub")).unwrap();
    fs::remove_file(data.join("link")).unwrap();
    b.ok(run_rm(&["-v", "seed:/data", "seeded", "true"]));
    assert_eq!(fs::read_dir(&data).unwrap().count(), 0);

    // volume-nocopy leaves a new volume empty; the image's files stay hidden under it.
    let out = b.ok(run_rm(&[
        "--mount",
        "type=volume,src=bare,dst=/data,volume-nocopy",
        "seeded",
        "ls",
        "-A",
        "/data",
    ]));
    assert_eq!(out, "");
    // `-v name:/path:nocopy` as well.
    let out = b.ok(run_rm(&[
        "-v",
        "bare2:/data:nocopy",
        "seeded",
        "ls",
        "-A",
        "/data",
    ]));
    assert_eq!(out, "");

    // A two-layer image is seen merged: the upper layer's file and the lower one's.
    b.ok([
        "run",
        "--network",
        "none",
        "--name",
        "layer2",
        "seeded",
        "sh",
        "-c",
        "echo upper > /data/sub/upper",
    ]);
    b.ok(["commit", "layer2", "seeded:two"]);
    let out = b.ok(run_rm(&[
        "-v",
        "merged:/data",
        "seeded:two",
        "sh",
        "-c",
        "cat /data/sub/file /data/sub/upper",
    ]));
    assert_eq!(out, "from image\nupper\n");
    assert!(mounts_under(&b).is_empty(), "{:?}", mounts_under(&b));
}

#[test]
fn image_volumes_are_anonymous_and_removed_with_rm_v() {
    needs_root!();
    let b = Berth::new();
    image_with(&b, "withvol", &["VOLUME /data"], |root| {
        fs::create_dir_all(root.join("data")).unwrap();
        fs::write(root.join("data/seed"), "seed\n").unwrap();
    });
    let id = b.ok([
        "create",
        "--network",
        "none",
        "--name",
        "cont",
        "-v",
        "keep:/named",
        "withvol",
        "sh",
        "-c",
        "cat /data/seed; echo kept > /named/f",
    ]);
    // The anonymous volume exists from `create` on, like Docker's.
    let doc = b.inspect_container("cont");
    let mounts = doc["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    let anon = mounts.iter().find(|m| m["Destination"] == "/data").unwrap();
    let anon_name = anon["Name"].as_str().unwrap().to_string();
    assert_eq!(anon_name.len(), 64);
    assert_eq!(anon["Type"], "volume");
    assert_eq!(anon["Driver"], "local");
    assert_eq!(anon["RW"], true);
    let named = mounts
        .iter()
        .find(|m| m["Destination"] == "/named")
        .unwrap();
    assert_eq!(named["Name"], "keep");
    assert_eq!(named["Mode"], "z");
    assert_eq!(
        doc["HostConfig"]["Binds"],
        serde_json::json!(["keep:/named"])
    );
    assert_eq!(doc["Config"]["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(
        inspect_volume(&b, &anon_name)["Labels"],
        serde_json::json!({"com.docker.volume.anonymous": ""})
    );
    assert_eq!(b.ok(["start", "-a", id.trim()]), "seed\n");
    b.ok(["rm", "-v", "cont"]);
    assert_eq!(b.ok(["volume", "ls", "-q"]), "keep\n");
    assert!(!b.root().join("volumes").join(&anon_name).exists());

    // `run --rm` removes the container's anonymous volumes too, and nothing else.
    b.ok(run_rm(&[
        "-v",
        "/scratch",
        "-v",
        "keep:/named",
        "withvol",
        "true",
    ]));
    assert_eq!(b.ok(["volume", "ls", "-q"]), "keep\n");
    // Plain `rm` keeps them.
    b.ok([
        "create",
        "--network",
        "none",
        "--name",
        "dcont",
        "withvol",
        "true",
    ]);
    b.ok(["rm", "dcont"]);
    assert_eq!(b.ok(["volume", "ls", "-q"]).lines().count(), 2);
}

#[test]
fn volume_in_use_cannot_be_removed() {
    needs_root!();
    let b = Berth::with_busybox();
    let id = b.ok([
        "create",
        "--network",
        "none",
        "-v",
        "busy:/data",
        "busybox",
        "true",
    ]);
    let id = id.trim();
    let r = b.fails(["volume", "rm", "busy"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        format!("Error response from daemon: remove busy: volume is in use - [{id}]")
    );
    // -f does not override a user either.
    assert_eq!(b.run(["volume", "rm", "-f", "busy"]).code, 1);
    assert_eq!(b.ok(["volume", "ls", "-q"]), "busy\n");
    assert_eq!(
        b.ok(["volume", "ls", "-q", "--filter", "dangling=true"]),
        ""
    );
    b.ok(["rm", id]);
    assert_eq!(
        b.ok(["volume", "ls", "-q", "--filter", "dangling=true"]),
        "busy\n"
    );
    assert_eq!(b.ok(["volume", "rm", "busy"]), "busy\n");
    assert!(!b.root().join("volumes/busy").exists());
    let r = b.fails(["volume", "rm", "busy"]);
    assert_eq!(
        r.stderr.trim(),
        "Error response from daemon: get busy: no such volume"
    );
    assert_eq!(b.run(["volume", "rm", "-f", "busy"]).code, 0);
}

#[test]
fn volumes_from_another_container() {
    needs_root!();
    let b = Berth::with_busybox();
    let host = host_dir(&b, "bound", "unused", "");
    let bind = format!("{}:/bound", host.display());
    b.ok([
        "run",
        "--network",
        "none",
        "--name",
        "src",
        "-v",
        "vf:/data",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo shared > /data/f",
    ]);
    let out = b.ok(run_rm(&[
        "--volumes-from",
        "src",
        "busybox",
        "sh",
        "-c",
        "cat /data/f; echo via-bind > /bound/g",
    ]));
    assert_eq!(out, "shared\n");
    assert_eq!(fs::read_to_string(host.join("g")).unwrap(), "via-bind\n");
    let r = b.run(run_rm(&[
        "--volumes-from",
        "src:ro",
        "busybox",
        "sh",
        "-c",
        "touch /data/nope",
    ]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
    let r = b.fails(run_rm(&["--volumes-from", "nosuch", "busybox", "true"]));
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("No such container: nosuch"),
        "{}",
        r.stderr
    );
}

#[test]
fn mount_flag_forms_and_errors() {
    needs_root!();
    let b = Berth::with_busybox();
    let host = host_dir(&b, "src", "f", "bound\n");
    let bind = format!("type=bind,source={},target=/b,readonly", host.display());
    let out = b.ok([
        "run",
        "--network",
        "none",
        "--name",
        "mnt",
        "--mount",
        &bind,
        "--mount",
        "type=volume,src=mv,dst=/v",
        "--mount",
        "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=700",
        "busybox",
        "sh",
        "-c",
        "cat /b/f; echo v > /v/f; stat -c %a /t; grep ' /t ' /proc/mounts; touch /b/x 2>&1 || true",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bound");
    assert_eq!(lines[1], "700");
    assert!(
        lines[2].contains("tmpfs") && lines[2].contains("size=1024k"),
        "{out}"
    );
    assert!(lines[3].contains("Read-only file system"), "{out}");
    let doc = b.inspect_container("mnt");
    let mounts = doc["Mounts"].as_array().unwrap();
    let by_dest = |d: &str| {
        mounts
            .iter()
            .find(|m| m["Destination"] == d)
            .unwrap()
            .clone()
    };
    assert_eq!(by_dest("/b")["Type"], "bind");
    assert_eq!(by_dest("/b")["RW"], false);
    assert_eq!(by_dest("/b")["Propagation"], "rprivate");
    assert_eq!(by_dest("/v")["Name"], "mv");
    assert_eq!(by_dest("/t")["Type"], "tmpfs");
    let spec = &doc["HostConfig"]["Mounts"];
    assert_eq!(spec.as_array().unwrap().len(), 3);
    assert_eq!(spec[0]["Type"], "bind");
    assert_eq!(spec[0]["ReadOnly"], true);
    assert_eq!(spec[2]["TmpfsOptions"]["SizeBytes"], 1048576);

    let missing = b.dir().join("missing");
    let r = b.fails(run_rm(&[
        "--mount",
        &format!("type=bind,src={},dst=/x", missing.display()),
        "busybox",
        "true",
    ]));
    assert_eq!(r.code, 125);
    assert_eq!(
        r.stderr.trim(),
        format!(
            "Error: invalid mount config for type \"bind\": bind source path does not exist: {}",
            missing.display()
        )
    );
    assert!(!missing.exists());
    for (flag, message) in [
        ("type=volume,src=v", "target is required"),
        ("type=bogus,dst=/x", "mount type unknown"),
        (
            "type=tmpfs,src=x,dst=/x",
            "field Source must not be specified",
        ),
        ("type=volume,src=v,dst=/x,bogus=1", "unexpected key 'bogus'"),
        (
            "type=volume,src=../../etc,dst=/x",
            "includes invalid characters",
        ),
        (
            "type=bind,src=/tmp,dst=/x,volume-nocopy",
            "cannot mix 'volume-*' options",
        ),
        ("type=volume,dst=relative", "must be absolute"),
    ] {
        let r = b.fails(run_rm(&["--mount", flag, "busybox", "true"]));
        assert_eq!(r.code, 125, "{flag}: {}", r.stderr);
        assert!(r.stderr.contains(message), "{flag}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{flag}: {}", r.stderr);
    }
    let r = b.fails(run_rm(&[
        "-v",
        "aa:/same",
        "--mount",
        "src=bb,dst=/same",
        "busybox",
        "true",
    ]));
    assert!(
        r.stderr.contains("Duplicate mount point: /same"),
        "{}",
        r.stderr
    );
    let r = b.fails(run_rm(&["-v", "data", "busybox", "true"]));
    assert!(r.stderr.contains("must be absolute"), "{}", r.stderr);
    // None of the failed runs left a container or a volume behind.
    assert_eq!(b.ok(["ps", "-aq"]).lines().count(), 1);
    assert_eq!(b.ok(["volume", "ls", "-q"]), "mv\n");
}

#[test]
fn volume_commands_output() {
    needs_root!();
    let b = Berth::with_busybox();
    let random = b.ok(["volume", "create"]);
    let random = random.trim();
    assert!(random.len() == 64 && random.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        b.ok(["volume", "create", "--label", "env=prod", "--label", "team", "alpha"]),
        "alpha\n"
    );
    // Creating an existing volume gives it back.
    assert_eq!(b.ok(["volume", "create", "alpha"]), "alpha\n");
    b.ok(["volume", "create", "-d", "local", "beta"]);
    let ls = b.ok(["volume", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(words(lines[0]), "DRIVER VOLUME NAME");
    assert!(lines.iter().any(|l| words(l) == "local alpha"), "{ls}");
    assert_eq!(lines.len(), 4);
    assert_eq!(
        b.ok(["volume", "ls", "-q", "-f", "label=env=prod"]),
        "alpha\n"
    );
    assert_eq!(b.ok(["volume", "ls", "-q", "-f", "label=team"]), "alpha\n");
    assert_eq!(b.ok(["volume", "ls", "-q", "-f", "name=bet"]), "beta\n");
    assert_eq!(
        b.ok(["volume", "ls", "-q", "-f", "driver=local"])
            .lines()
            .count(),
        3
    );
    assert_eq!(
        b.ok([
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Labels}}",
            "-f",
            "name=alpha"
        ]),
        "alpha local env=prod,team=\n"
    );
    let json: Value = serde_json::from_str(
        b.ok(["volume", "ls", "--format", "json", "-f", "name=beta"])
            .trim(),
    )
    .unwrap();
    assert_eq!(json["Name"], "beta");
    assert_eq!(json["Scope"], "local");

    let doc = inspect_volume(&b, "alpha");
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "CreatedAt",
            "Driver",
            "Labels",
            "Mountpoint",
            "Name",
            "Options",
            "Scope"
        ]
    );
    assert_eq!(
        doc["Labels"],
        serde_json::json!({"env": "prod", "team": ""})
    );
    assert_eq!(doc["Options"], Value::Null);
    assert!(doc["CreatedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        b.ok([
            "volume",
            "inspect",
            "-f",
            "{{.Name}}:{{.Driver}}:{{.Scope}}",
            "beta"
        ]),
        "beta:local:local\n"
    );
    let r = b.fails(["volume", "inspect", "nosuch"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.trim(), "Error: No such volume: nosuch");

    // Bad input: one line, non-zero, nothing created.
    for args in [
        vec!["volume", "create", "a/b"],
        vec!["volume", "create", "../x"],
        vec!["volume", "create", "-d", "nfs-plugin", "x1"],
        vec!["volume", "create", "-o", "bogus=1", "x2"],
        vec!["volume", "create", "-o", "type=tmpfs", "x3"],
    ] {
        let r = b.fails(args.clone());
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("Error response from daemon: create "),
            "{}",
            r.stderr
        );
    }
    assert_eq!(b.ok(["volume", "ls", "-q"]).lines().count(), 3);
    for name in ["x1", "x2", "x3"] {
        assert!(!b.root().join("volumes").join(name).exists());
    }

    // Prune: without -a only anonymous unused volumes go.
    b.ok([
        "create",
        "--network",
        "none",
        "--name",
        "user",
        "-v",
        "/anon-used",
        "busybox",
        "true",
    ]);
    b.ok([
        "run",
        "--network",
        "none",
        "--name",
        "gone",
        "-v",
        "/anon-free",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/anon-free/blob bs=1024 count=2048 2>/dev/null",
    ]);
    let free = b.inspect_container("gone")["Mounts"][0]["Name"]
        .as_str()
        .unwrap()
        .to_string();
    b.ok(["rm", "gone"]);
    let out = b.ok(["volume", "prune", "-f"]);
    assert_eq!(
        out,
        format!("Deleted Volumes:\n{free}\n\nTotal reclaimed space: 2.1MB\n")
    );
    assert_eq!(b.ok(["volume", "ls", "-q"]).lines().count(), 4);
    // `label!=team` keeps alpha, the one volume labelled team.
    let out = b.ok(["volume", "prune", "-f", "-a", "--filter", "label!=team"]);
    assert!(out.contains("beta\n") && out.contains(random), "{out}");
    assert!(!out.contains("alpha"), "{out}");
    let out = b.ok(["volume", "prune", "-f", "-a", "--filter", "label=env=prod"]);
    assert_eq!(
        out,
        "Deleted Volumes:\nalpha\n\nTotal reclaimed space: 0B\n"
    );
    let out = b.ok(["volume", "prune", "-af"]);
    assert!(!out.contains("Deleted Volumes"), "{out}");
    // The volume of the stopped container "user" stays.
    assert_eq!(b.ok(["volume", "ls", "-q"]).lines().count(), 1);
    let df = b.ok(["system", "df"]);
    assert!(
        df.lines()
            .any(|l| l.starts_with("Local Volumes") && l.contains(" 1 ")),
        "{df}"
    );
}

#[test]
fn local_driver_tmpfs_is_mounted_while_used() {
    needs_root!();
    let b = Berth::with_busybox();
    b.ok([
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "fast",
    ]);
    let data = mountpoint(&b, "fast");
    assert_eq!(
        inspect_volume(&b, "fast")["Options"],
        serde_json::json!({"device": "tmpfs", "o": "size=1m", "type": "tmpfs"})
    );
    b.ok([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "one",
        "-v",
        "fast:/fast",
        "busybox",
        "sh",
        "-c",
        "echo a > /fast/a; sleep 60",
    ]);
    b.ok([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "two",
        "-v",
        "fast:/fast",
        "busybox",
        "sleep",
        "60",
    ]);
    let data_text = data.display().to_string();
    assert!(
        mounts_under(&b).contains(&data_text),
        "{:?}",
        mounts_under(&b)
    );
    // Both containers see the one tmpfs, limited as asked.
    let out = b.ok([
        "exec",
        "two",
        "sh",
        "-c",
        "grep ' /fast ' /proc/mounts; cat /fast/a",
    ]);
    assert!(out.contains("tmpfs") && out.contains("size=1024k"), "{out}");
    assert!(out.ends_with("a\n"), "{out}");
    b.ok(["rm", "-f", "one"]);
    assert!(mounts_under(&b).contains(&data_text));
    b.ok(["stop", "-t", "0", "two"]);
    assert!(
        !mounts_under(&b).contains(&data_text),
        "{:?}",
        mounts_under(&b)
    );
    // Fresh again at the next start (a tmpfs keeps nothing).
    b.ok(["start", "two"]);
    assert!(mounts_under(&b).contains(&data_text));
    assert_eq!(b.ok(["exec", "two", "ls", "-A", "/fast"]), "");
    b.ok(["rm", "-f", "two"]);
    b.ok(["volume", "rm", "fast"]);
    assert!(mounts_under(&b).is_empty(), "{:?}", mounts_under(&b));
    assert!(!b.root().join("volumes/fast").exists());
    // A bad driver mount is one clear error and leaves nothing mounted.
    b.ok([
        "volume",
        "create",
        "-o",
        "type=nosuchfs",
        "-o",
        "device=x",
        "broken",
    ]);
    let r = b.fails(run_rm(&["-v", "broken:/x", "busybox", "true"]));
    assert!(
        r.stderr.contains("failed to mount local volume"),
        "{}",
        r.stderr
    );
    assert!(mounts_under(&b).is_empty());
}

#[test]
fn symlinked_mount_points_stay_inside_the_rootfs() {
    needs_root!();
    let b = Berth::new();
    let outside = b.dir().join("outside");
    image_with(&b, "tricky", &["VOLUME /vol"], |root| {
        // Both point out of the image if followed on the host.
        symlink("../../../../../../../..", root.join("up")).unwrap();
        symlink("/", root.join("abs")).unwrap();
        symlink("../../../../../../../../etc", root.join("vol")).unwrap();
    });
    let host = host_dir(&b, "payload", "marker", "payload\n");
    let through_up = format!("{}:/up{}", host.display(), outside.display());
    let through_abs = format!("{}:/abs{}-abs", host.display(), outside.display());
    let out = b.ok(run_rm(&[
        "-v",
        &through_up,
        "-v",
        &through_abs,
        "tricky",
        "sh",
        "-c",
        &format!("cat {0}/marker {0}-abs/marker", outside.display()),
    ]));
    assert_eq!(out, "payload\npayload\n");
    // The binds landed inside the container's root, not on the host.
    assert!(!outside.exists(), "a mount point escaped to the host");
    assert!(
        !b.dir().join("outside-abs").exists(),
        "a mount point escaped to the host"
    );
    // The image VOLUME at /vol -> ../../etc was filled from the image's /etc, not the host's.
    let doc = b.ok([
        "create",
        "--network",
        "none",
        "--name",
        "tricky1",
        "tricky",
        "true",
    ]);
    b.ok(["start", "-a", doc.trim()]);
    let name = b.inspect_container("tricky1")["Mounts"][0]["Name"]
        .as_str()
        .unwrap()
        .to_string();
    let passwd = fs::read_to_string(mountpoint(&b, &name).join("passwd")).unwrap();
    assert!(
        passwd.starts_with("root:x:0:0:root:/root:/bin/sh\nnobody"),
        "{passwd}"
    );
    assert_eq!(fs::read_dir(mountpoint(&b, &name)).unwrap().count(), 2);
    assert!(mounts_under(&b).is_empty(), "{:?}", mounts_under(&b));
}

#[test]
fn leftovers_of_a_crash_are_invisible_and_cleared() {
    needs_root!();
    let b = Berth::with_busybox();
    b.ok(["volume", "ls"]);
    // What a kill -9 between the directory and the row leaves: a directory without a row.
    let stale = b.root().join("volumes/ghost/_data");
    fs::create_dir_all(&stale).unwrap();
    fs::write(stale.join("old"), "stale").unwrap();
    assert_eq!(b.ok(["volume", "ls", "-q"]), "");
    b.ok(["volume", "create", "ghost"]);
    assert_eq!(fs::read_dir(&stale).unwrap().count(), 0);
    b.ok(["volume", "rm", "ghost"]);
    fs::create_dir_all(b.root().join("volumes/orphan/_data")).unwrap();
    b.ok(["volume", "prune", "-f"]);
    assert!(!b.root().join("volumes/orphan").exists());
}

/// What the `cp` tests mount: host directories bound read-write at `/mnt/host` and read-only
/// at `/mnt/ro`, volume `vol` at `/data`, a tmpfs at `/scratch`.
struct CpMounts {
    host: PathBuf,
    ro: PathBuf,
    flags: Vec<String>,
}

fn cp_mounts(b: &Berth) -> CpMounts {
    let host = host_dir(b, "host", "seen", "from host\n");
    let ro = host_dir(b, "ro", "kept", "read only\n");
    let flags = vec![
        "-v".to_string(),
        "vol:/data".into(),
        "-v".into(),
        format!("{}:/mnt/host", host.display()),
        "-v".into(),
        format!("{}:/mnt/ro:ro", ro.display()),
        "--mount".into(),
        "type=tmpfs,dst=/scratch".into(),
    ];
    CpMounts { host, ro, flags }
}

/// `berth ARGS…` with `flags` spliced in after `before`.
fn ok_with(b: &Berth, before: &[&str], flags: &[String], after: &[&str]) -> String {
    let args: Vec<String> = before
        .iter()
        .map(|a| a.to_string())
        .chain(flags.iter().cloned())
        .chain(after.iter().map(|a| a.to_string()))
        .collect();
    b.ok(args)
}

/// Copying `file` into `dest` is refused with Docker's error.
fn refused_read_only(b: &Berth, file: &str, dest: &str) {
    let r = b.fails(["cp", file, dest]);
    assert!(
        r.stderr.contains("mounted volume is marked read-only"),
        "{}",
        r.stderr
    );
}

#[test]
fn cp_sees_the_volumes_and_binds_of_a_stopped_container() {
    needs_root!();
    let b = Berth::with_busybox();
    let CpMounts { host, ro, flags } = cp_mounts(&b);
    let device = host_dir(&b, "device", "dev-file", "on the device\n");
    let device_option = format!("device={}", device.display());
    b.ok([
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &device_option,
        "bound",
    ]);
    ok_with(
        &b,
        &[
            "run",
            "--network",
            "none",
            "--name",
            "box",
            "-v",
            "bound:/bound",
        ],
        &flags,
        &[
            "busybox",
            "sh",
            "-c",
            "echo in-volume > /data/f; echo in-tmpfs > /scratch/gone",
        ],
    );
    let out = b.dir().join("out");
    fs::create_dir(&out).unwrap();
    let at = |name: &str| out.join(name).display().to_string();

    // Out of a named volume, a bind and a driver-mounted volume: their content, not the
    // (empty) directories of the container's own file system beneath them.
    b.ok(["cp", "box:/data/f", &at("f")]);
    assert_eq!(fs::read_to_string(out.join("f")).unwrap(), "in-volume\n");
    b.ok(["cp", "box:/mnt/host", &at("host")]);
    assert_eq!(
        fs::read_to_string(out.join("host/seen")).unwrap(),
        "from host\n"
    );
    b.ok(["cp", "box:/bound/dev-file", &at("dev-file")]);
    assert_eq!(
        fs::read_to_string(out.join("dev-file")).unwrap(),
        "on the device\n"
    );
    // A stopped container's tmpfs is empty.
    b.ok(["cp", "box:/scratch", &at("scratch")]);
    assert_eq!(fs::read_dir(out.join("scratch")).unwrap().count(), 0);

    // Into them: the files land in the volume, the bind's host directory and the device.
    let new = b.dir().join("new");
    fs::write(&new, "copied in\n").unwrap();
    let new = new.display().to_string();
    b.ok(["cp", &new, "box:/data/"]);
    b.ok(["cp", &new, "box:/mnt/host/new"]);
    b.ok(["cp", &new, "box:/bound/"]);
    for copy in [mountpoint(&b, "vol"), host, device] {
        assert_eq!(
            fs::read_to_string(copy.join("new")).unwrap(),
            "copied in\n",
            "{}",
            copy.display()
        );
    }
    let id = b.inspect_container("box")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let upper = b.root().join("containers").join(&id).join("upper");
    for hidden in ["data/new", "mnt/host/new", "bound/new"] {
        assert!(
            !upper.join(hidden).exists(),
            "{hidden} went to the upper dir"
        );
    }
    // The driver's mount was only ever in cp's own namespace: `_data` stayed empty.
    assert_eq!(fs::read_dir(mountpoint(&b, "bound")).unwrap().count(), 0);

    // A read-only bind is refused with Docker's error, as the target or as its parent, and
    // can still be read.
    refused_read_only(&b, &new, "box:/mnt/ro/");
    refused_read_only(&b, &new, "box:/mnt/ro/new");
    assert!(!ro.join("new").exists());
    b.ok(["cp", "box:/mnt/ro/kept", &at("kept")]);
    assert_eq!(fs::read_to_string(out.join("kept")).unwrap(), "read only\n");

    // The container still starts, and a new one sees what cp wrote.
    assert_eq!(b.ok(["start", "-a", "box"]), "");
    let seen = b.ok(run_rm(&[
        "-v",
        "bound:/bound",
        "busybox",
        "cat",
        "/bound/new",
    ]));
    assert_eq!(seen, "copied in\n");
    assert!(mounts_under(&b).is_empty(), "{:?}", mounts_under(&b));
}

#[test]
fn cp_of_a_stopped_container_mounts_nothing_outside_its_root() {
    needs_root!();
    let b = Berth::new();
    let outside = b.dir().join("outside");
    image_with(&b, "tricky", &[], |root| {
        symlink("../../../../../../../..", root.join("up")).unwrap();
    });
    let host = host_dir(&b, "payload", "marker", "payload\n");
    let through_up = format!("{}:/up{}", host.display(), outside.display());
    b.ok([
        "create",
        "--network",
        "none",
        "--name",
        "never-run",
        "-v",
        &through_up,
        "tricky",
        "true",
    ]);
    let copy = b.dir().join("copy");
    let from = format!("never-run:/up{}/marker", outside.display());
    b.ok(["cp", &from, &copy.display().to_string()]);
    assert_eq!(fs::read_to_string(&copy).unwrap(), "payload\n");
    assert!(!outside.exists(), "a mount point escaped to the host");
    assert!(mounts_under(&b).is_empty(), "{:?}", mounts_under(&b));
}

#[test]
fn cp_into_a_running_container_goes_through_its_mounts() {
    needs_root!();
    let b = Berth::with_busybox();
    let CpMounts { host, ro, flags } = cp_mounts(&b);
    ok_with(
        &b,
        &["run", "-d", "--network", "none", "--name", "live"],
        &flags,
        &["busybox", "sleep", "60"],
    );
    b.ok(["exec", "live", "sh", "-c", "echo in-tmpfs > /scratch/f"]);
    let new = b.dir().join("new");
    fs::write(&new, "copied in\n").unwrap();
    let new = new.display().to_string();
    for dest in ["live:/data/", "live:/mnt/host/", "live:/scratch/"] {
        b.ok(["cp", &new, dest]);
    }
    assert_eq!(
        fs::read_to_string(mountpoint(&b, "vol").join("new")).unwrap(),
        "copied in\n"
    );
    assert_eq!(fs::read_to_string(host.join("new")).unwrap(), "copied in\n");
    // The running container's own tmpfs, both ways.
    assert_eq!(b.ok(["exec", "live", "cat", "/scratch/new"]), "copied in\n");
    let out = b.dir().join("out");
    b.ok(["cp", "live:/scratch/f", &out.display().to_string()]);
    assert_eq!(fs::read_to_string(&out).unwrap(), "in-tmpfs\n");
    refused_read_only(&b, &new, "live:/mnt/ro/");
    assert!(!ro.join("new").exists());
    b.ok(["rm", "-f", "live"]);
    assert!(mounts_under(&b).is_empty(), "{:?}", mounts_under(&b));
}

#[test]
fn cp_into_a_read_only_container_reaches_only_its_volumes() {
    needs_root!();
    let b = Berth::with_busybox();
    b.ok([
        "create",
        "--network",
        "none",
        "--read-only",
        "--name",
        "sealed",
        "-v",
        "vol:/data",
        "busybox",
        "true",
    ]);
    let new = b.dir().join("new");
    fs::write(&new, "copied in\n").unwrap();
    let new = new.display().to_string();
    let r = b.fails(["cp", &new, "sealed:/tmp/"]);
    assert!(
        r.stderr.contains("container rootfs is marked read-only"),
        "{}",
        r.stderr
    );
    b.ok(["cp", &new, "sealed:/data/"]);
    assert_eq!(
        fs::read_to_string(mountpoint(&b, "vol").join("new")).unwrap(),
        "copied in\n"
    );
    assert!(mounts_under(&b).is_empty(), "{:?}", mounts_under(&b));
}

/// The names `export CONTAINER` writes, without a leading `./` or trailing `/`.
fn exported_names(b: &Berth, container: &str) -> Vec<String> {
    let out = b.command(["export", container]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    berth_tests::tar_names(&out.stdout)
        .iter()
        .map(|n| n.trim_start_matches("./").trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn export_leaves_volumes_and_binds_out() {
    needs_root!();
    let b = Berth::with_busybox();
    let host = host_dir(&b, "host", "seen", "from host\n");
    let bind = format!("{}:/mnt/host", host.display());
    b.ok([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "exp",
        "-v",
        "vol:/data",
        "-v",
        &bind,
        "busybox",
        "sleep",
        "60",
    ]);
    b.ok([
        "exec",
        "exp",
        "sh",
        "-c",
        "echo in-volume > /data/f; echo in-upper > /upper",
    ]);
    // Docker: "The command does not export the contents of volumes associated with the
    // container." The mount points are there, empty; nor does a running container's /proc
    // come along.
    let running = exported_names(&b, "exp");
    b.ok(["kill", "exp"]);
    b.ok(["wait", "exp"]);
    let stopped = exported_names(&b, "exp");
    for names in [&running, &stopped] {
        for present in ["upper", "data", "mnt/host", "proc", "bin/busybox"] {
            assert!(names.iter().any(|n| n == present), "{present}: {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.starts_with("data/")
                || n.starts_with("mnt/host/")
                || n.starts_with("proc/")),
            "{names:?}"
        );
    }
    assert_eq!(running, stopped);
    assert!(mounts_under(&b).is_empty(), "{:?}", mounts_under(&b));
}
