//! `cp` with `-`: tar streams out of and into containers, as Docker's `cp`.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_tests::{is_root, tar_names, Berth};

macro_rules! needs_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// Runs `script` in a new busybox container `name`, which then stays stopped.
fn run_script(b: &Berth, name: &str, script: &str) {
    b.ok([
        "run",
        "--network",
        "none",
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        script,
    ]);
}

/// `berth cp SRC -`'s stdout, the raw tar bytes.
fn cp_out(b: &Berth, args: &[&str]) -> Vec<u8> {
    let out = b.command(args).output().expect("berth runs");
    assert!(
        out.status.success(),
        "berth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `berth cp - CONTAINER:DEST` with `tar` on stdin; asserts success.
fn cp_in(b: &Berth, tar: &[u8], dest: &str) {
    let r = b.run_with_input(["cp", "-", dest], tar);
    assert_eq!(r.code, 0, "cp - {dest}: {}", r.stderr);
}

/// The contents of the entry `name` of `tar`.
fn entry_data(tar: &[u8], name: &str) -> Vec<u8> {
    let mut archive = tar::Archive::new(tar);
    let mut entry = archive
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap() == Path::new(name))
        .unwrap_or_else(|| panic!("no entry {name}"));
    let mut data = Vec::new();
    entry.read_to_end(&mut data).unwrap();
    data
}

fn upper(b: &Berth, container: &str) -> PathBuf {
    b.root()
        .join("containers")
        .join(b.inspect_container(container)["Id"].as_str().unwrap())
        .join("upper")
}

/// What [`raw_tar`] writes for one name.
enum Raw<'a> {
    File(&'a [u8]),
    Symlink(&'a str),
    /// A directory owned by 4321 with mode 0700.
    Dir,
}

/// A tar built from raw entries: names are written as given, `..` and all, as a hostile
/// client would.
fn raw_tar(entries: &[(&str, Raw<'_>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, raw) in entries {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        let data: &[u8] = match raw {
            Raw::File(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                data
            }
            Raw::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                b""
            }
            Raw::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o700);
                h.set_uid(4321);
                b""
            }
        };
        h.set_size(data.len() as u64);
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn cp_stream_names_entries_like_docker() {
    needs_root!();
    let b = Berth::with_busybox();
    run_script(
        &b,
        "src",
        "mkdir -p /dir/sub && echo deep > /dir/sub/f && echo top > /file \
         && ln -s /dir /link && ln -s file /flink",
    );
    assert_eq!(
        tar_names(&cp_out(&b, &["cp", "src:/dir", "-"])),
        ["dir/", "dir/sub/", "dir/sub/f"]
    );
    let file = cp_out(&b, &["cp", "src:/file", "-"]);
    assert_eq!(tar_names(&file), ["file"]);
    assert_eq!(entry_data(&file, "file"), b"top\n");
    assert_eq!(
        tar_names(&cp_out(&b, &["cp", "src:/dir/.", "-"])),
        ["./", "./sub/", "./sub/f"]
    );
    assert_eq!(
        tar_names(&cp_out(&b, &["cp", "src:/link/.", "-"])),
        ["./", "./sub/", "./sub/f"]
    );
    let r = b.fails(["cp", "src:/file/.", "-"]);
    assert!(r.stderr.contains("not a directory"), "{}", r.stderr);
    // A symlink is archived as itself, unless -L (or a trailing `/`) follows it; what it leads
    // to is then named after the link.
    let link = cp_out(&b, &["cp", "src:/link", "-"]);
    let mut archive = tar::Archive::new(&link[..]);
    let entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.header().entry_type(), tar::EntryType::Symlink);
    assert_eq!(entry.link_name().unwrap().unwrap(), Path::new("/dir"));
    assert_eq!(tar_names(&link), ["link"]);
    assert_eq!(
        tar_names(&cp_out(&b, &["cp", "-L", "src:/link", "-"])),
        ["link/", "link/sub/", "link/sub/f"]
    );
    assert_eq!(
        tar_names(&cp_out(&b, &["cp", "src:/link/", "-"])),
        ["link/", "link/sub/", "link/sub/f"]
    );
    let followed = cp_out(&b, &["cp", "-L", "src:/flink", "-"]);
    assert_eq!(tar_names(&followed), ["flink"]);
    assert_eq!(entry_data(&followed, "flink"), b"top\n");
    let r = b.fails(["cp", "src:/missing", "-"]);
    assert!(
        r.stderr
            .contains("Could not find the file /missing in container src"),
        "{}",
        r.stderr
    );
}

#[test]
fn cp_stream_round_trips_into_stopped_and_running_containers() {
    needs_root!();
    let b = Berth::with_busybox();
    run_script(
        &b,
        "src",
        "mkdir -p /dir/sub && echo deep > /dir/sub/f && chown 1234:5678 /dir/sub/f \
         && touch /dir/.wh.sub && ln -s sub/f /dir/rel",
    );
    let tar = cp_out(&b, &["cp", "src:/dir", "-"]);
    b.ok([
        "create",
        "--network",
        "none",
        "--name",
        "dst",
        "busybox",
        "true",
    ]);
    cp_in(&b, &tar, "dst:/tmp");
    let landed = upper(&b, "dst").join("tmp/dir");
    assert_eq!(fs::read_to_string(landed.join("sub/f")).unwrap(), "deep\n");
    let meta = fs::metadata(landed.join("sub/f")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    // A whiteout-looking name is a plain file, not an overlay whiteout.
    assert!(fs::symlink_metadata(landed.join(".wh.sub"))
        .unwrap()
        .is_file());
    assert!(landed.join("sub").is_dir());
    assert_eq!(
        fs::read_link(landed.join("rel")).unwrap(),
        Path::new("sub/f")
    );
    // Running: the container sees the files at once.
    b.ok("run -d --network none --name live busybox sleep 600".split(' '));
    cp_in(&b, &tar, "live:/");
    assert_eq!(b.ok(["exec", "live", "cat", "/dir/sub/f"]), "deep\n");
    let contents = cp_out(&b, &["cp", "src:/dir/.", "-"]);
    cp_in(&b, &contents, "live:/tmp");
    assert_eq!(b.ok(["exec", "live", "cat", "/tmp/sub/f"]), "deep\n");
    assert_eq!(
        tar_names(&cp_out(&b, &["cp", "live:/dir/sub", "-"])),
        ["sub/", "sub/f"]
    );
    b.ok(["rm", "-f", "live"]);
}

#[test]
fn cp_stream_tar_cannot_write_outside_the_container() {
    needs_root!();
    let b = Berth::with_busybox();
    run_script(
        &b,
        "box",
        "mkdir /dest && ln -s / /dest/evil && ln -s ../../../../../../.. /dest/up",
    );
    let marker = format!("berth-cpstream-{}", std::process::id());
    let host_tmp = std::env::temp_dir();
    let outside = |name: &str| host_tmp.join(format!("{marker}-{name}"));
    let dotdot = format!(
        "../../../../../../../..{}/{marker}-dotdot",
        host_tmp.display()
    );
    let hostile: Vec<(String, Vec<u8>)> = vec![
        ("dotdot".into(), raw_tar(&[(&dotdot, Raw::File(b"x"))])),
        (
            "abs".into(),
            raw_tar(&[
                ("abs", Raw::Symlink(host_tmp.to_str().unwrap())),
                (&format!("abs/{marker}-abs"), Raw::File(b"x")),
            ]),
        ),
        (
            "evil".into(),
            raw_tar(&[(
                &format!("evil{}/{marker}-evil", host_tmp.display()),
                Raw::File(b"x"),
            )]),
        ),
        (
            "up".into(),
            raw_tar(&[(
                &format!("up{}/{marker}-up", host_tmp.display()),
                Raw::File(b"x"),
            )]),
        ),
    ];
    for (name, tar) in &hostile {
        // Refusing is fine; writing outside the container is not.
        let _ = b.run_with_input(["cp", "-", "box:/dest"], tar);
        assert!(
            !outside(name).exists(),
            "{name}: the tar escaped the container"
        );
    }
    // Nothing outside the container's upper dir got the file either.
    let container_dir = upper(&b, "box").parent().unwrap().to_path_buf();
    assert!(!container_dir.join(format!("{marker}-dotdot")).exists());
    // The symlink stayed a symlink, pointing where the tar said, inside the container.
    let abs = upper(&b, "box").join("dest/abs");
    assert!(fs::symlink_metadata(&abs).unwrap().file_type().is_symlink());
}

#[test]
fn cp_stream_refuses_bad_destinations() {
    needs_root!();
    let b = Berth::with_busybox();
    let ro = b.dir().join("ro");
    fs::create_dir(&ro).unwrap();
    let ro_bind = format!("{}:/mnt/ro:ro", ro.display());
    let create_box = format!("create --network none --name box -v {ro_bind} busybox true");
    b.ok(create_box.split(' '));
    b.ok("create --network none --read-only --name sealed busybox true".split(' '));
    let tar = raw_tar(&[("./", Raw::Dir), ("new", Raw::File(b"new\n"))]);
    let refused = |dest: &str, message: &str| {
        let r = b.run_with_input(["cp", "-", dest], &tar);
        assert_ne!(r.code, 0, "cp - {dest} should fail");
        assert!(r.stderr.contains(message), "cp - {dest}: {}", r.stderr);
    };
    refused("box:/etc/passwd", "extraction point is not a directory");
    refused(
        "box:/nope",
        "Could not find the file /nope in container box",
    );
    refused("box:/mnt/ro", "mounted volume is marked read-only");
    refused("sealed:/tmp", "container rootfs is marked read-only");
    assert!(!ro.join("new").exists());
    assert!(!upper(&b, "sealed").join("tmp/new").exists());
    let tmp_before = tmp_owner_and_mode(&b);
    cp_in(&b, &tar, "box:/tmp");
    let tmp = upper(&b, "box").join("tmp");
    assert_eq!(fs::read_to_string(tmp.join("new")).unwrap(), "new\n");
    // The tar's `./` does not change the existing directory, as with Docker.
    assert_eq!(tmp_owner_and_mode(&b), tmp_before);
    assert_ne!(tmp_before, (4321, 0o700));
}

/// `/tmp`'s owner and mode in container `box`, from the tar `cp` writes.
fn tmp_owner_and_mode(b: &Berth) -> (u64, u32) {
    let tar = cp_out(b, &["cp", "box:/tmp", "-"]);
    let mut archive = tar::Archive::new(&tar[..]);
    let entry = archive.entries().unwrap().next().unwrap().unwrap();
    (
        entry.header().uid().unwrap(),
        entry.header().mode().unwrap(),
    )
}
