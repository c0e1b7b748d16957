//! Unpack tests: metadata and whiteouts on crafted tars, and the escape attempts a hostile layer
//! can make. Tars are written header by header so that names the `tar` crate's builder refuses
//! (`..`, absolute paths) can be tested.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::*;
use crate::layer::testutil::{is_root, RawEntry, RawTar};

/// A temp dir holding `dest` (the layer root) and `outside`, a sentinel that must stay empty.
struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("dest")).unwrap();
        fs::create_dir(tmp.path().join("outside")).unwrap();
        let victim = tmp.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("secret"), b"keep me").unwrap();
        Sandbox { tmp }
    }
    fn dest(&self) -> PathBuf {
        self.tmp.path().join("dest")
    }
    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }
    fn victim(&self) -> PathBuf {
        self.tmp.path().join("victim")
    }
    fn unpack(&self, tar: Vec<u8>) -> Result<UnpackStats> {
        unpack(&tar[..], &self.dest(), &UnpackOptions::default())
    }
    /// Nothing was written next to `dest`, into `outside`, or to the victim.
    fn assert_contained(&self) {
        let mut names: Vec<_> = fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["dest", "outside", "victim"],
            "files appeared beside dest"
        );
        assert_eq!(
            fs::read_dir(self.outside()).unwrap().count(),
            0,
            "outside was written"
        );
        let victim: Vec<_> = fs::read_dir(self.victim()).unwrap().collect();
        assert_eq!(victim.len(), 1, "victim dir changed");
        let secret = self.victim().join("secret");
        assert_eq!(fs::read(&secret).unwrap(), b"keep me");
        assert_eq!(
            fs::metadata(&secret).unwrap().nlink(),
            1,
            "secret was hardlinked"
        );
        assert!(
            rustix::fs::getxattr(self.victim(), OVERLAY_OPAQUE_XATTR, &mut [0u8; 8][..]).is_err()
        );
    }
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn unpacks_files_dirs_links_and_metadata() {
    if !is_root() {
        eprintln!("skipping: needs root for ownership, devices and trusted xattrs");
        return;
    }
    let sb = Sandbox::new();
    let tar = RawTar::default()
        .entry(RawEntry {
            mode: 0o1777,
            mtime: 1_500_000_000,
            ..RawEntry::dir("tmp/")
        })
        .entry(RawEntry {
            mode: 0o4755,
            uid: 1000,
            gid: 1001,
            ..RawEntry::file("bin/su", b"#!/bin/true\n")
        })
        .pax(&[
            ("SCHILY.xattr.user.note", b"hello"),
            (
                "SCHILY.xattr.security.capability",
                &[1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/forged"),
            ("mtime", b"1234567890.5"),
        ])
        .entry(RawEntry::file("bin/ping", b"ping"))
        .entry(RawEntry::hardlink("bin/ping2", "bin/ping"))
        .entry(RawEntry::symlink("bin/sh", "/bin/busybox"))
        .entry(RawEntry {
            dev: (1, 3),
            mode: 0o666,
            ..RawEntry::new("dev/null", b'3')
        })
        .entry(RawEntry {
            dev: (8, 1),
            mode: 0o660,
            gid: 6,
            ..RawEntry::new("dev/sda1", b'4')
        })
        .entry(RawEntry::new("run/fifo", b'6'))
        .entry(RawEntry::file("/abs/file", b"abs"))
        .finish();
    let stats = sb.unpack(tar).unwrap();
    assert_eq!(stats.entries, 9);
    assert_eq!(stats.bytes, 12 + 4 + 3);
    let d = sb.dest();

    let tmp = fs::metadata(d.join("tmp")).unwrap();
    assert_eq!(tmp.mode() & 0o7777, 0o1777);
    assert_eq!(
        tmp.mtime(),
        1_500_000_000,
        "dir mtime restored after its contents"
    );

    let su = fs::metadata(d.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid survives chown");
    assert_eq!((su.uid(), su.gid()), (1000, 1001));
    assert_eq!(su.mtime(), 1_600_000_000);

    let ping = d.join("bin/ping");
    assert_eq!(xattr(&ping, "user.note").as_deref(), Some(&b"hello"[..]));
    assert!(xattr(&ping, "security.capability").is_some());
    assert_eq!(
        xattr(&ping, "trusted.overlay.redirect"),
        None,
        "overlay xattrs are dropped"
    );
    let meta = fs::metadata(&ping).unwrap();
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (1_234_567_890, 500_000_000)
    );
    assert_eq!(meta.nlink(), 2);
    assert_eq!(meta.ino(), fs::metadata(d.join("bin/ping2")).unwrap().ino());

    assert_eq!(
        fs::read_link(d.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    let null = fs::symlink_metadata(d.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let sda = fs::symlink_metadata(d.join("dev/sda1")).unwrap();
    assert!(sda.file_type().is_block_device());
    assert_eq!((sda.rdev(), sda.gid()), (rustix::fs::makedev(8, 1), 6));
    assert!(fs::symlink_metadata(d.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::read(d.join("abs/file")).unwrap(),
        b"abs",
        "leading / is dropped"
    );
    sb.assert_contained();
}

#[test]
fn converts_oci_whiteouts_to_overlay_form() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let tar = RawTar::default()
        .entry(RawEntry::dir("etc/"))
        .entry(RawEntry::file("etc/.wh.passwd", b""))
        .entry(RawEntry::dir("var/cache/"))
        .entry(RawEntry::file("var/cache/.wh..wh..opq", b""))
        .entry(RawEntry::file("var/cache/new", b"n"))
        .entry(RawEntry::file(".wh..wh.plnk/123.456", b"aufs"))
        .entry(RawEntry::file("deep/er/.wh.gone", b""))
        .finish();
    sb.unpack(tar).unwrap();
    let d = sb.dest();
    let wh = fs::symlink_metadata(d.join("etc/passwd")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!d.join("etc/.wh.passwd").exists());
    assert_eq!(
        xattr(&d.join("var/cache"), OVERLAY_OPAQUE_XATTR).as_deref(),
        Some(&b"y"[..])
    );
    assert!(!d.join("var/cache/.wh..wh..opq").exists());
    assert!(!d.join(".wh..wh.plnk").exists(), "AUFS metadata is skipped");
    assert!(fs::symlink_metadata(d.join("deep/er/gone"))
        .unwrap()
        .file_type()
        .is_char_device());

    // Without conversion the names are plain files.
    let plain = Sandbox::new();
    let tar = RawTar::default()
        .entry(RawEntry::file("a/.wh.b", b""))
        .finish();
    let opts = UnpackOptions {
        convert_whiteouts: false,
        ..UnpackOptions::default()
    };
    unpack(&tar[..], &plain.dest(), &opts).unwrap();
    assert!(plain.dest().join("a/.wh.b").is_file());
}

#[test]
fn later_entries_replace_earlier_ones_without_following_them() {
    let sb = Sandbox::new();
    let outside = sb.outside();
    let out = outside.to_str().unwrap();
    let tar = RawTar::default()
        // A symlink at the final component is replaced, not written through.
        .entry(RawEntry::symlink("f", &format!("{out}/f")))
        .entry(RawEntry::file("f", b"inside"))
        // A directory entry where a symlink to a directory stands.
        .entry(RawEntry::symlink("d", out))
        .entry(RawEntry::dir("d/"))
        .entry(RawEntry::file("d/x", b"x"))
        // A hardlink and a FIFO over symlinks.
        .entry(RawEntry::symlink("h", &format!("{out}/h")))
        .entry(RawEntry::hardlink("h", "f"))
        .entry(RawEntry::symlink("p", &format!("{out}/p")))
        .entry(RawEntry::new("p", b'6'))
        // A file replaced by a directory and the reverse.
        .entry(RawEntry::file("g", b"g"))
        .entry(RawEntry::dir("g/"))
        .entry(RawEntry::file("g/in", b"in"))
        .entry(RawEntry::file("g", b"file again"))
        .finish();
    sb.unpack(tar).unwrap();
    let d = sb.dest();
    assert_eq!(fs::read(d.join("f")).unwrap(), b"inside");
    assert!(fs::symlink_metadata(d.join("d")).unwrap().is_dir());
    assert_eq!(fs::read(d.join("d/x")).unwrap(), b"x");
    assert_eq!(
        fs::metadata(d.join("h")).unwrap().ino(),
        fs::metadata(d.join("f")).unwrap().ino()
    );
    assert!(fs::symlink_metadata(d.join("p"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(fs::read(d.join("g")).unwrap(), b"file again");
    sb.assert_contained();
}

#[test]
fn symlinks_inside_the_root_are_followed_for_parents() {
    let sb = Sandbox::new();
    let tar = RawTar::default()
        .entry(RawEntry::dir("usr/lib/"))
        .entry(RawEntry::symlink("lib", "usr/lib"))
        .entry(RawEntry::file("lib/libc.so", b"elf"))
        .entry(RawEntry::symlink("usr/lib/up", "../.."))
        .entry(RawEntry::file("usr/lib/up/top", b"top"))
        .finish();
    sb.unpack(tar).unwrap();
    assert_eq!(fs::read(sb.dest().join("usr/lib/libc.so")).unwrap(), b"elf");
    assert_eq!(fs::read(sb.dest().join("top")).unwrap(), b"top");
    sb.assert_contained();
}

#[test]
fn in_root_scope_resolves_absolute_symlinks_against_the_root() {
    let sb = Sandbox::new();
    let tmp = sb
        .tmp
        .path()
        .to_str()
        .unwrap()
        .trim_start_matches('/')
        .to_owned();
    let through = format!("evil/{tmp}/outside/pwned");
    let tar = RawTar::default()
        .entry(RawEntry::symlink("evil", "/"))
        .entry(RawEntry::file(&through, b"contained"))
        .finish();
    let opts = UnpackOptions {
        symlinks: SymlinkScope::InRoot,
        ..UnpackOptions::default()
    };
    unpack(&tar[..], &sb.dest(), &opts).unwrap();
    let landed = sb.dest().join(&tmp).join("outside/pwned");
    assert_eq!(fs::read(landed).unwrap(), b"contained");
    sb.assert_contained();
}

/// Each hostile tar must fail with the expected error and leave everything outside `dest` as it
/// was.
#[test]
fn hostile_layers_are_refused_and_contained() {
    type Check = fn(&LayerError) -> bool;
    let escape: Check = |e| matches!(e, LayerError::PathEscape { .. });
    let symlink: Check = |e| matches!(e, LayerError::SymlinkEscape { .. });
    let hardlink: Check = |e| matches!(e, LayerError::BadHardlink { .. });
    let invalid: Check = |e| matches!(e, LayerError::InvalidEntry { .. });

    type MakeTar = Box<dyn Fn(&Sandbox) -> Vec<u8>>;
    let cases: Vec<(&str, MakeTar, Check)> = vec![
        (
            "../escape",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::file("../outside/pwned", b"x"))
                    .finish()
            }),
            escape,
        ),
        (
            "a/../../escape",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::file("a/../../outside/pwned", b"x"))
                    .finish()
            }),
            escape,
        ),
        (
            "directory ../",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::dir("../outside/d/"))
                    .finish()
            }),
            escape,
        ),
        (
            "symlink to / then a file through it",
            Box::new(|sb| {
                let through = format!(
                    "evil/{}/outside/pwned",
                    sb.tmp.path().to_str().unwrap().trim_start_matches('/')
                );
                RawTar::default()
                    .entry(RawEntry::symlink("evil", "/"))
                    .entry(RawEntry::file(&through, b"x"))
                    .finish()
            }),
            symlink,
        ),
        (
            "symlink to ../../ then a file through it",
            Box::new(|sb| {
                let name = sb.tmp.path().file_name().unwrap().to_str().unwrap();
                RawTar::default()
                    .entry(RawEntry::symlink("evil", "../../"))
                    .entry(RawEntry::file(&format!("evil/{name}/outside/pwned"), b"x"))
                    .finish()
            }),
            symlink,
        ),
        (
            "relative symlink to a sibling dir",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::symlink("evil", "../outside"))
                    .entry(RawEntry::file("evil/pwned", b"x"))
                    .finish()
            }),
            symlink,
        ),
        (
            "absolute symlink to a dir outside, nested use",
            Box::new(|sb| {
                let out = sb.outside();
                RawTar::default()
                    .entry(RawEntry::dir("a/"))
                    .entry(RawEntry::symlink("a/evil", out.to_str().unwrap()))
                    .entry(RawEntry::dir("a/evil/sub/"))
                    .finish()
            }),
            symlink,
        ),
        (
            "symlink chain leading out",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::dir("x/"))
                    .entry(RawEntry::symlink("x/one", "../two"))
                    .entry(RawEntry::symlink("two", "x/../../outside"))
                    .entry(RawEntry::file("x/one/pwned", b"x"))
                    .finish()
            }),
            symlink,
        ),
        (
            "device node through a symlink",
            Box::new(|sb| {
                RawTar::default()
                    .entry(RawEntry::symlink("evil", sb.outside().to_str().unwrap()))
                    .entry(RawEntry::new("evil/fifo", b'6'))
                    .finish()
            }),
            symlink,
        ),
        (
            "symlink created through a symlink",
            Box::new(|sb| {
                RawTar::default()
                    .entry(RawEntry::symlink("evil", sb.outside().to_str().unwrap()))
                    .entry(RawEntry::symlink("evil/link", "/etc/passwd"))
                    .finish()
            }),
            symlink,
        ),
        (
            "hardlink to ../../etc/passwd",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::hardlink("passwd", "../../etc/passwd"))
                    .finish()
            }),
            hardlink,
        ),
        (
            "hardlink to a sibling's file",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::hardlink("stolen", "../victim/secret"))
                    .finish()
            }),
            hardlink,
        ),
        (
            "hardlink through a symlink",
            Box::new(|sb| {
                RawTar::default()
                    .entry(RawEntry::symlink("evil", sb.victim().to_str().unwrap()))
                    .entry(RawEntry::hardlink("stolen", "evil/secret"))
                    .finish()
            }),
            hardlink,
        ),
        (
            "hardlink through a relative symlink",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::symlink("evil", "../victim"))
                    .entry(RawEntry::hardlink("stolen", "evil/secret"))
                    .finish()
            }),
            hardlink,
        ),
        (
            "hardlink to a missing file",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::hardlink("l", "nothing"))
                    .finish()
            }),
            hardlink,
        ),
        (
            "whiteout naming ..",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::file("a/.wh...", b""))
                    .finish()
            }),
            invalid,
        ),
        (
            "whiteout naming .",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::file("a/.wh..", b""))
                    .finish()
            }),
            invalid,
        ),
        (
            "empty whiteout",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::file(".wh.", b""))
                    .finish()
            }),
            invalid,
        ),
        (
            "whiteout with .. in its directory",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::file("../victim/.wh.secret", b""))
                    .finish()
            }),
            escape,
        ),
        (
            "whiteout through a symlink",
            Box::new(|sb| {
                RawTar::default()
                    .entry(RawEntry::symlink("evil", sb.victim().to_str().unwrap()))
                    .entry(RawEntry::file("evil/.wh.secret", b""))
                    .finish()
            }),
            symlink,
        ),
        (
            "opaque marker through a symlink",
            Box::new(|_| {
                RawTar::default()
                    .entry(RawEntry::symlink("evil", "../victim"))
                    .entry(RawEntry::file("evil/.wh..wh..opq", b""))
                    .finish()
            }),
            symlink,
        ),
        (
            "file named by a PAX path that escapes",
            Box::new(|_| {
                RawTar::default()
                    .pax(&[("path", b"ok/../../outside/pwned")])
                    .entry(RawEntry::file("harmless", b"x"))
                    .finish()
            }),
            escape,
        ),
        (
            "a file standing for the root",
            Box::new(|_| RawTar::default().entry(RawEntry::file(".", b"x")).finish()),
            invalid,
        ),
    ];

    for (what, make, check) in cases {
        let sb = Sandbox::new();
        let tar = make(&sb);
        match sb.unpack(tar) {
            Ok(_) => panic!("{what}: unpack succeeded"),
            Err(e) => assert!(check(&e), "{what}: unexpected error {e:?}"),
        }
        sb.assert_contained();
    }
}

#[test]
fn errors_name_the_entry() {
    let sb = Sandbox::new();
    let tar = RawTar::default()
        .entry(RawEntry::symlink("evil", "/"))
        .entry(RawEntry::file("evil/etc/pwned", b"x"))
        .finish();
    let msg = sb.unpack(tar).unwrap_err().to_string();
    assert_eq!(
        msg,
        "layer entry \"evil/etc/pwned\": parent directory \"evil\" resolves outside the layer root \
         (through a symlink)"
    );
}

/// Counts what was read through it.
struct Counting<R>(R, u64);
impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
}

#[test]
fn reads_the_stream_to_its_end() {
    let sb = Sandbox::new();
    let mut tar = RawTar::default()
        .entry(RawEntry::file("a", b"data"))
        .finish();
    // GNU tar pads archives to a 10 KiB record.
    tar.resize(10240, 0);
    let mut reader = Counting(&tar[..], 0);
    unpack(&mut reader, &sb.dest(), &UnpackOptions::default()).unwrap();
    assert_eq!(reader.1, 10240);
}

#[test]
fn truncated_streams_fail() {
    let sb = Sandbox::new();
    let tar = RawTar::default()
        .entry(RawEntry::file("a", &[7; 3000]))
        .finish();
    let cut = &tar[..512 + 1000];
    assert!(matches!(
        sb.unpack(cut.to_vec()),
        Err(LayerError::ReadStream(_))
    ));
    let mut bad = tar.clone();
    bad[148] ^= 1; // corrupt the header checksum
    assert!(matches!(sb.unpack(bad), Err(LayerError::ReadStream(_))));
    sb.assert_contained();
}

#[test]
fn pax_times_parse() {
    assert_eq!(
        parse_pax_time(b"12").map(|t| (t.tv_sec, t.tv_nsec)),
        Some((12, 0))
    );
    assert_eq!(
        parse_pax_time(b"12.5").map(|t| (t.tv_sec, t.tv_nsec)),
        Some((12, 500_000_000))
    );
    assert_eq!(
        parse_pax_time(b"1.0000000019").map(|t| (t.tv_sec, t.tv_nsec)),
        Some((1, 1))
    );
    assert_eq!(
        parse_pax_time(b"-1.25").map(|t| (t.tv_sec, t.tv_nsec)),
        Some((-2, 750_000_000))
    );
    assert!(parse_pax_time(b"x").is_none());
}

/// CPU time (user + system) used by this process so far, from `/proc/self/stat`: under a loaded
/// machine wall time says little, CPU time still tells what the work costs.
fn process_cpu() -> std::time::Duration {
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // After the command name: state is field 3, utime and stime are fields 14 and 15.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    std::time::Duration::from_millis(ticks * 10)
}

/// Times unpacking a large tar, alone and with the DiffId computed on the way as import does.
/// `BERTH_BENCH_TAR` names the tar (default: the Debian rootfs from `bench-inputs.sh`),
/// `BERTH_BENCH_DEST` the directory to unpack under (default: the temp dir).
/// Run with `cargo test --release -p berth-image --lib bench_unpack -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_unpack() {
    use crate::digest::DigestReader;
    use std::time::Instant;

    let tar = std::env::var("BERTH_BENCH_TAR")
        .unwrap_or_else(|_| "/tmp/anchors/inputs/debian-rootfs.tar".to_owned());
    let Ok(size) = fs::metadata(&tar).map(|m| m.len()) else {
        eprintln!("skipping: {tar} not found");
        return;
    };
    let open = || fs::File::open(&tar).unwrap();
    // Warm the page cache so every run measures the same thing.
    io::copy(&mut open(), &mut io::sink()).unwrap();
    let (t, cpu) = (Instant::now(), process_cpu());
    let (_, digest, _) = {
        let mut r = DigestReader::new(open());
        io::copy(&mut r, &mut io::sink()).unwrap();
        r.finish()
    };
    eprintln!(
        "sha256 alone: wall {:?}, cpu {:?}",
        t.elapsed(),
        process_cpu() - cpu
    );
    for round in 0..3 {
        for mode in [
            "",
            " + inline sha256",
            " + sha256 on a 2nd thread (unpack_with_diff_id)",
        ] {
            let dest = match std::env::var_os("BERTH_BENCH_DEST") {
                Some(parent) => tempfile::tempdir_in(parent).unwrap(),
                None => tempfile::tempdir().unwrap(),
            };
            let (t, cpu) = (Instant::now(), process_cpu());
            let stats = match mode {
                "" => unpack(open(), dest.path(), &UnpackOptions::default()).unwrap(),
                " + inline sha256" => {
                    let mut r = DigestReader::new(open());
                    let stats = unpack(&mut r, dest.path(), &UnpackOptions::default()).unwrap();
                    assert_eq!(r.finish().1, digest);
                    stats
                }
                _ => {
                    let opts = UnpackOptions::default();
                    let (stats, diff_id) = unpack_with_diff_id(open(), dest.path(), &opts).unwrap();
                    assert_eq!(diff_id.0, digest);
                    stats
                }
            };
            eprintln!(
                "round {round} unpack{mode}: wall {:?}, cpu {:?} for a {} MB tar ({} entries, \
                 {} MB of file data)",
                t.elapsed(),
                process_cpu() - cpu,
                size / 1_000_000,
                stats.entries,
                stats.bytes / 1_000_000
            );
        }
    }
}

/// Times packing the unpacked tree back into a tar (what `commit` of a fresh container with
/// everything changed, or `export`, costs). Same variables as [`bench_unpack`].
#[test]
#[ignore]
fn bench_pack() {
    use crate::layer::{pack_dir, PackOptions};
    use std::time::Instant;

    let tar = std::env::var("BERTH_BENCH_TAR")
        .unwrap_or_else(|_| "/tmp/anchors/inputs/debian-rootfs.tar".to_owned());
    let Ok(file) = fs::File::open(&tar) else {
        eprintln!("skipping: {tar} not found");
        return;
    };
    let dest = match std::env::var_os("BERTH_BENCH_DEST") {
        Some(parent) => tempfile::tempdir_in(parent).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    unpack(file, dest.path(), &UnpackOptions::default()).unwrap();
    for round in 0..3 {
        let mut out = Counting(io::sink(), 0);
        let (t, cpu) = (Instant::now(), process_cpu());
        pack_dir(dest.path(), &mut out, &PackOptions::default()).unwrap();
        eprintln!(
            "round {round} pack_dir: wall {:?}, cpu {:?}, {} MB of tar",
            t.elapsed(),
            process_cpu() - cpu,
            out.1 / 1_000_000
        );
    }
}

impl<W: io::Write> io::Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[test]
fn root_entry_is_applied_only_when_asked() {
    let tar = RawTar::default()
        .entry(RawEntry {
            mode: 0o700,
            mtime: 1_000_000_000,
            ..RawEntry::dir("./")
        })
        .entry(RawEntry::file("f", b"f"))
        .finish();
    let mode = |d: &Path| fs::metadata(d).unwrap().mode() & 0o7777;

    let applied = Sandbox::new();
    fs::set_permissions(applied.dest(), fs::Permissions::from_mode(0o751)).unwrap();
    unpack(&tar[..], &applied.dest(), &UnpackOptions::default()).unwrap();
    assert_eq!(mode(&applied.dest()), 0o700);

    let kept = Sandbox::new();
    fs::set_permissions(kept.dest(), fs::Permissions::from_mode(0o751)).unwrap();
    let before = fs::metadata(kept.dest()).unwrap().mtime();
    let opts = UnpackOptions {
        apply_root_entry: false,
        ..UnpackOptions::default()
    };
    unpack(&tar[..], &kept.dest(), &opts).unwrap();
    assert_eq!(mode(&kept.dest()), 0o751);
    assert_ne!(fs::metadata(kept.dest()).unwrap().mtime(), 1_000_000_000);
    assert!(before > 1_000_000_000);
    assert_eq!(fs::read(kept.dest().join("f")).unwrap(), b"f");
}
