//! Pack tests: round trips through `unpack`, whiteout translation, interoperability with GNU tar,
//! and an end-to-end check through a real overlayfs mount.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::fs::{AtFlags, Gid, Timespec, Timestamps, Uid, XattrFlags, CWD};

use super::*;
use crate::layer::testutil::{describe, is_root, xattrs};
use crate::layer::whiteout::OVERLAY_OPAQUE_XATTR;
use crate::layer::{changes, unpack, UnpackOptions};

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, XattrFlags::empty()).unwrap();
}

fn chown(path: &Path, uid: u32, gid: u32) {
    rustix::fs::chownat(
        CWD,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtime(path: &Path, secs: i64) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// Every kind of node a layer can hold, with awkward names and metadata.
fn rich_tree(root: &Path) {
    let long_dir = root.join("d".repeat(90)).join("e".repeat(90));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("f".repeat(120)), b"long name").unwrap();
    fs::create_dir(root.join("a")).unwrap();
    fs::write(root.join("a/suid"), b"#!/bin/true\n").unwrap();
    chmod(&root.join("a/suid"), 0o4711);
    fs::write(root.join("a/empty"), b"").unwrap();
    let big: Vec<u8> = (0..3_000_017u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(root.join("a/big"), &big).unwrap();
    fs::write(root.join("a/h1"), b"linked").unwrap();
    fs::hard_link(root.join("a/h1"), root.join("a/h2")).unwrap();
    fs::hard_link(root.join("a/h1"), root.join("h3")).unwrap();
    symlink("/usr/bin/env", root.join("a/abs")).unwrap();
    symlink("x".repeat(150), root.join("a/longtarget")).unwrap();
    symlink("../a", root.join("a/rel")).unwrap();
    fs::write(
        root.join(OsStr::from_bytes(b"bin\xffary")),
        b"non-utf8 name",
    )
    .unwrap();
    fs::create_dir(root.join("tmp")).unwrap();
    chmod(&root.join("tmp"), 0o1777);
    fs::create_dir(root.join("g")).unwrap();
    chmod(&root.join("g"), 0o2775);
    if is_root() {
        chown(&root.join("g"), 12, 34);
        chown(&root.join("a/suid"), 0, 5);
        chmod(&root.join("a/suid"), 0o4711);
        chown(&root.join("a/abs"), 7, 8);
        fs::create_dir(root.join("dev")).unwrap();
        rustix::fs::mknodat(
            CWD,
            root.join("dev/null"),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        rustix::fs::mknodat(
            CWD,
            root.join("dev/loop0"),
            FileType::BlockDevice,
            Mode::from_raw_mode(0o660),
            rustix::fs::makedev(7, 0),
        )
        .unwrap();
        rustix::fs::mknodat(
            CWD,
            root.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o640),
            0,
        )
        .unwrap();
        chmod(&root.join("dev/null"), 0o666);
        chmod(&root.join("fifo"), 0o640);
        set_xattr(&root.join("a"), "trusted.dir", b"t");
        set_xattr(&root.join("a/abs"), "trusted.link", b"on a symlink");
        // CAP_NET_RAW, as on /bin/ping.
        let cap = [
            0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        set_xattr(&root.join("a/big"), "security.capability", &cap);
    }
    set_xattr(&root.join("a/h1"), "user.note", &[0, 1, 2, 255]);
    set_xattr(
        &root.join("a/empty"),
        &format!("user.{}", "k".repeat(120)),
        &[b'v'; 300],
    );
    // Times last, deepest first, so creating entries does not change them again.
    let mut t = 1_000_000_000;
    for rel in ["a/suid", "a/big", "a/abs", "tmp", "a", "g"] {
        t += 1000;
        set_mtime(&root.join(rel), t);
    }
}

fn pack_to_vec(dir: &Path, opts: &PackOptions<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    pack_dir(dir, &mut out, opts).unwrap();
    out
}

fn unpack_into(tar: &[u8], dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    unpack(tar, dest, &UnpackOptions::default()).unwrap();
}

/// (name, type byte, link name) of every entry, as the `tar` crate reads them.
fn listing(tar: &[u8]) -> Vec<(String, u8, String)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                e.header().entry_type().as_byte(),
                link,
            )
        })
        .collect()
}

#[test]
fn pack_then_unpack_preserves_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    rich_tree(&src);
    let tar = pack_to_vec(&src, &PackOptions::default());
    let dst = tmp.path().join("dst");
    unpack_into(&tar, &dst);
    let (before, after) = (describe(&src), describe(&dst));
    for (path, desc) in &before {
        assert_eq!(
            after.get(path),
            Some(desc),
            "{} differs after a round trip",
            String::from_utf8_lossy(path)
        );
    }
    assert_eq!(before.len(), after.len());

    let entries = listing(&tar);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    // Walk order: a directory, then its contents, names sorted bytewise; dirs end with '/'.
    let a = names.iter().position(|n| *n == "a/").unwrap();
    assert_eq!(names[a + 1], "a/abs");
    let hardlinks: Vec<_> = entries.iter().filter(|e| e.1 == b'1').collect();
    assert_eq!(hardlinks.len(), 2);
    assert!(hardlinks.iter().all(|e| e.2 == "a/h1"));
}

#[test]
fn output_is_deterministic_clamped_and_readable_by_gnu_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    rich_tree(&src);
    let first = pack_to_vec(&src, &PackOptions::default());
    assert_eq!(first, pack_to_vec(&src, &PackOptions::default()));
    assert_eq!(first.len() % 512, 0);

    let clamped = pack_to_vec(
        &src,
        &PackOptions {
            clamp_mtime: Some(1_000_002_500),
            ..PackOptions::default()
        },
    );
    let mut archive = tar::Archive::new(&clamped[..]);
    for entry in archive.entries().unwrap() {
        assert!(entry.unwrap().header().mtime().unwrap() <= 1_000_002_500);
    }

    // GNU tar lists our output and extracts it to the same tree.
    let tar_file = tmp.path().join("out.tar");
    fs::write(&tar_file, &first).unwrap();
    let gnu = tmp.path().join("gnu");
    fs::create_dir(&gnu).unwrap();
    let status = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
        .arg(&tar_file)
        .arg("-C")
        .arg(&gnu)
        .status();
    match status {
        Ok(status) => {
            assert!(status.success(), "GNU tar rejected our output");
            let ours = describe(&src);
            let theirs = describe(&gnu);
            for (path, desc) in &ours {
                // GNU tar cannot restore xattrs on symlinks; compare everything else there.
                if desc.starts_with("symlink") {
                    continue;
                }
                assert_eq!(
                    theirs.get(path),
                    Some(desc),
                    "{}",
                    String::from_utf8_lossy(path)
                );
            }
        }
        Err(e) => eprintln!("skipping GNU tar check: {e}"),
    }
}

#[test]
fn unpacks_what_gnu_tar_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    rich_tree(&src);
    let tar_file = tmp.path().join("gnu.tar");
    let Ok(status) = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--format=posix", "-cf"])
        .arg(&tar_file)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
    else {
        return;
    };
    assert!(status.success());
    let dst = tmp.path().join("dst");
    unpack_into(&fs::read(&tar_file).unwrap(), &dst);
    let (ours, theirs) = (describe(&dst), describe(&src));
    for (path, desc) in &theirs {
        if desc.starts_with("symlink") {
            continue; // GNU tar does not store symlink xattrs
        }
        assert_eq!(
            ours.get(path),
            Some(desc),
            "{}",
            String::from_utf8_lossy(path)
        );
    }
}

#[test]
fn filter_skips_and_prunes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    rich_tree(&src);
    let filter = |path: &Path, is_dir: bool| match path.to_str() {
        Some("a") => Select::Prune,
        Some("tmp") if is_dir => Select::Skip,
        _ => Select::Include,
    };
    fs::write(src.join("tmp/kept"), b"k").unwrap();
    let tar = pack_to_vec(
        &src,
        &PackOptions {
            filter: Some(&filter),
            ..PackOptions::default()
        },
    );
    let names: Vec<String> = listing(&tar).into_iter().map(|e| e.0).collect();
    assert!(!names.iter().any(|n| n.starts_with("a/")));
    assert!(!names.iter().any(|n| n == "tmp/"));
    assert!(names.iter().any(|n| n == "tmp/kept"));
    // h3 is linked to a/h1, which was pruned: it is written as a file of its own.
    assert!(listing(&tar).iter().any(|e| e.0 == "h3" && e.1 == b'0'));
}

#[test]
fn diff_turns_overlay_whiteouts_into_oci_ones_and_back() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    fs::create_dir_all(upper.join("etc")).unwrap();
    for name in ["etc/passwd", "etc/shadow"] {
        rustix::fs::mknodat(
            CWD,
            upper.join(name),
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();
    }
    fs::create_dir_all(upper.join("var/cache")).unwrap();
    set_xattr(&upper.join("var/cache"), OVERLAY_OPAQUE_XATTR, b"y");
    chmod(&upper.join("var/cache"), 0o750);
    fs::write(upper.join("var/cache/new"), b"n").unwrap();
    set_xattr(
        &upper.join("var/cache/new"),
        "trusted.overlay.origin",
        b"\0\xfb",
    );
    set_xattr(&upper.join("var/cache/new"), "user.keep", b"k");

    let mut tar = Vec::new();
    pack_diff(&upper, &mut tar).unwrap();
    let entries = listing(&tar);
    let summary: Vec<(&str, u8)> = entries.iter().map(|e| (e.0.as_str(), e.1)).collect();
    assert_eq!(
        summary,
        [
            ("etc/", b'5'),
            ("etc/.wh.passwd", b'0'),
            ("etc/.wh.shadow", b'0'),
            ("var/", b'5'),
            ("var/cache/", b'5'),
            ("var/cache/.wh..wh..opq", b'0'),
            ("var/cache/new", b'0'),
        ]
    );
    let mut archive = tar::Archive::new(&tar[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if let Some(pax) = entry.pax_extensions().unwrap() {
            for ext in pax {
                let key = ext.unwrap().key().unwrap().to_owned();
                assert!(
                    !key.contains("overlay"),
                    "overlay xattr {key} leaked into the layer"
                );
            }
        }
    }

    // Unpacking the layer gives back the overlay form.
    let layer = tmp.path().join("layer");
    unpack_into(&tar, &layer);
    let wh = fs::symlink_metadata(layer.join("etc/passwd")).unwrap();
    assert_eq!((wh.mode() & libc::S_IFMT, wh.rdev()), (libc::S_IFCHR, 0));
    assert_eq!(xattrs(&layer.join("var/cache")), []);
    let mut buf = [0u8; 4];
    let n =
        rustix::fs::lgetxattr(layer.join("var/cache"), OVERLAY_OPAQUE_XATTR, &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert_eq!(
        xattrs(&layer.join("var/cache/new")),
        [("user.keep".to_owned(), b"k".to_vec())]
    );
    assert_eq!(
        fs::metadata(layer.join("var/cache")).unwrap().mode() & 0o777,
        0o750
    );
}

#[test]
fn diff_refuses_redirected_directories() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("moved")).unwrap();
    set_xattr(
        &tmp.path().join("moved"),
        "trusted.overlay.redirect",
        b"/orig",
    );
    let err = pack_diff(tmp.path(), &mut Vec::new()).unwrap_err();
    assert!(matches!(
        err,
        LayerError::UnsupportedOverlayFeature {
            feature: "redirect_dir",
            ..
        }
    ));
}

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

fn mount_overlay(
    lowers: &[&Path],
    upper_work: Option<(&Path, &Path)>,
    target: &Path,
) -> rustix::io::Result<Mounted> {
    let lower = lowers
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let mut data = format!("lowerdir={lower}");
    if let Some((upper, work)) = upper_work {
        data += &format!(",upperdir={},workdir={}", upper.display(), work.display());
    }
    data += ",redirect_dir=off,index=off,metacopy=off";
    let data = std::ffi::CString::new(data).unwrap();
    let flags = if upper_work.is_some() {
        rustix::mount::MountFlags::empty()
    } else {
        rustix::mount::MountFlags::RDONLY
    };
    rustix::mount::mount("overlay", target, "overlay", flags, data.as_c_str())?;
    Ok(Mounted(target.to_owned()))
}

/// The whole cycle through the kernel: unpack a base layer, change it through a writable overlay,
/// pack the upper dir, unpack that as a second layer, and check that stacking the two layers
/// shows exactly what the container saw.
#[test]
fn overlay_round_trip_through_the_kernel() {
    if !is_root() {
        return;
    }
    // A private mount namespace for this thread only: mounts vanish with it whatever happens.
    std::thread::spawn(|| {
        // SAFETY: only the mount namespace (and with it the fs context) of this new thread is
        // unshared; no file descriptors are involved.
        let unshared =
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) };
        if let Err(e) = unshared {
            eprintln!("skipping overlay test: unshare: {e}");
            return;
        }
        rustix::mount::mount_change(
            "/",
            rustix::mount::MountPropagationFlags::PRIVATE
                | rustix::mount::MountPropagationFlags::REC,
        )
        .unwrap();
        overlay_round_trip();
    })
    .join()
    .unwrap();
}

fn overlay_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let p = tmp.path().join(name);
        fs::create_dir(&p).unwrap();
        p
    };
    let (src, base, upper, work, merged) = (
        dir("src"),
        dir("base"),
        dir("upper"),
        dir("work"),
        dir("merged"),
    );
    let (layer2, view) = (dir("layer2"), dir("view"));

    rich_tree(&src);
    fs::create_dir_all(src.join("var/cache/apt")).unwrap();
    fs::write(src.join("var/cache/apt/pkgcache.bin"), b"cache").unwrap();
    fs::write(src.join("etc_passwd"), b"root:x:0:0").unwrap();
    unpack_into(&pack_to_vec(&src, &PackOptions::default()), &base);

    let mounted = match mount_overlay(&[&base], Some((&upper, &work)), &merged) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("skipping overlay test: mount: {e}");
            return;
        }
    };
    let m = |rel: &str| merged.join(rel);
    fs::remove_file(m("etc_passwd")).unwrap();
    fs::remove_file(m("a/h2")).unwrap();
    fs::remove_dir_all(m("var/cache")).unwrap();
    fs::create_dir(m("var/cache")).unwrap();
    fs::write(m("var/cache/fresh"), b"fresh").unwrap();
    fs::write(m("a/big"), b"rewritten").unwrap();
    chmod(&m("g"), 0o700);
    fs::create_dir_all(m("opt/app/bin")).unwrap();
    fs::write(m("opt/app/bin/run"), b"#!/bin/sh\n").unwrap();
    fs::hard_link(m("opt/app/bin/run"), m("opt/app/bin/run2")).unwrap();
    symlink("bin/run", m("opt/app/start")).unwrap();
    set_xattr(&m("opt/app/bin/run"), "user.x", b"1");
    fs::remove_dir_all(m(&"d".repeat(90))).unwrap();
    let seen = describe(&merged);
    drop(mounted);

    let found = changes(&upper, std::slice::from_ref(&base)).unwrap();
    let found: Vec<String> = found.iter().map(ToString::to_string).collect();
    for expected in [
        "D /etc_passwd",
        "C /a/big",
        "D /a/h2",
        "D /var/cache",
        "A /var/cache/fresh",
        "A /opt",
        "A /opt/app/bin/run",
        "C /g",
    ] {
        assert!(
            found.contains(&expected.to_owned()),
            "{expected} missing from {found:#?}"
        );
    }

    let mut diff = Vec::new();
    pack_diff(&upper, &mut diff).unwrap();
    let names: Vec<String> = listing(&diff).into_iter().map(|e| e.0).collect();
    assert!(
        names.contains(&"var/cache/.wh..wh..opq".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&".wh.etc_passwd".to_owned()), "{names:?}");
    unpack_into(&diff, &layer2);

    let mounted = mount_overlay(&[&layer2, &base], None, &view).unwrap();
    let stacked = describe(&view);
    drop(mounted);
    for (path, desc) in &seen {
        assert_eq!(
            stacked.get(path),
            Some(desc),
            "{}",
            String::from_utf8_lossy(path)
        );
    }
    assert_eq!(
        seen.len(),
        stacked.len(),
        "the stacked view has extra entries"
    );
}

#[test]
fn rename_top_renames_names_and_hardlink_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("d/sub")).unwrap();
    fs::write(src.join("d/sub/f"), b"f").unwrap();
    fs::hard_link(src.join("d/sub/f"), src.join("d/g")).unwrap();
    fs::write(src.join("other"), b"o").unwrap();
    let only_d = |path: &Path, _: bool| {
        if path.starts_with("d") {
            Select::Include
        } else {
            Select::Prune
        }
    };
    let tar = pack_to_vec(
        &src,
        &PackOptions {
            filter: Some(&only_d),
            rename_top: Some(b"new"),
            ..PackOptions::default()
        },
    );
    let entries: Vec<(String, String)> = listing(&tar).into_iter().map(|e| (e.0, e.2)).collect();
    let expected = [
        ("new/", ""),
        ("new/g", ""),
        ("new/sub/", ""),
        ("new/sub/f", "new/g"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, l)| (n.to_string(), l.to_string()))
        .collect();
    assert_eq!(entries, expected);
}
