//! `berth build` end to end: real RUN steps on busybox, COPY/ADD from contexts, the cache,
//! multi-stage builds, failures that leave nothing behind, and `builder prune`.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use berth_tests::{Berth, Run};
use serde_json::Value;

/// Writes `files` (path, content) under `dir`.
fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
}

fn context(b: &Berth, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = b.dir().join(name);
    fs::create_dir_all(&dir).unwrap();
    write_files(&dir, files);
    dir
}

/// A test store with busybox imported as `busybox`, the base most builds start from.
fn with_busybox() -> Berth {
    let b = Berth::new();
    b.import_busybox("busybox");
    b
}

/// Adds a root-owned 0644 file with a fixed mtime to `tar`.
fn append_file(tar: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    tar.append_data(&mut h, name, data).unwrap();
}

/// [`with_busybox`] and a build context `ctx` holding `files`.
fn busybox_and_context(files: &[(&str, &str)]) -> (Berth, PathBuf) {
    let b = with_busybox();
    let ctx = context(&b, "ctx", files);
    (b, ctx)
}

/// `berth build ARGS CONTEXT`.
fn build(b: &Berth, args: &[&str], context: &Path) -> Run {
    let context = context.display().to_string();
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    all.push(&context);
    b.run(all)
}

/// Builds `context` and returns (image ID, progress output).
fn build_ok(b: &Berth, args: &[&str], context: &Path) -> (String, String) {
    let iid = b.dir().join("iid");
    let iid_s = iid.display().to_string();
    let context = context.display().to_string();
    let mut all = vec!["build", "--iidfile", iid_s.as_str(), "--progress", "plain"];
    all.extend_from_slice(args);
    all.push(&context);
    let run = b.run(all.clone());
    assert_eq!(
        run.code, 0,
        "berth {all:?} failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    (fs::read_to_string(&iid).unwrap(), run.stderr)
}

fn inspect(b: &Berth, name: &str) -> Value {
    let out = b.ok(["image", "inspect", name]);
    let docs: Value = serde_json::from_str(&out).unwrap();
    docs[0].clone()
}

fn cached_steps(progress: &str) -> usize {
    progress.lines().filter(|l| l.ends_with(" CACHED")).count()
}

/// The image's config blob, from the store (inspect does not show history).
fn config(b: &Berth, id: &str) -> Value {
    let hex = id.trim().trim_start_matches("sha256:");
    let bytes = fs::read(b.root().join("blobs/sha256").join(hex)).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Nothing of a build is left in the store's tmp/, the runtime's state, or the mount table.
fn assert_no_leftovers(b: &Berth) {
    let tmp: Vec<_> = fs::read_dir(b.root().join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "leftovers in tmp/: {tmp:?}");
    let state: Vec<_> = fs::read_dir(b.runroot().join("build"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(state.is_empty(), "leftover build containers: {state:?}");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = b.dir().display().to_string();
    assert!(!mounts.contains(&root), "leftover mounts under {root}");
}

const APP_DOCKERFILE: &str = "FROM busybox
ENV APP=/app
WORKDIR /app
RUN echo build > /build.txt && ls / | wc -l > /count
COPY src/ /app/src/
RUN find /app/src -type f | wc -l > /app/files && cat /app/src/*.txt > /app/all
CMD [\"cat\",\"/app/files\"]
";

#[test]
fn build_runs_steps_and_the_cache_makes_rebuilds_instant() {
    let (b, ctx) = busybox_and_context(&[
        ("Dockerfile", APP_DOCKERFILE),
        ("src/a.txt", "alpha\n"),
        ("src/b.txt", "beta\n"),
    ]);
    let (id, progress) = build_ok(&b, &["-t", "app:1"], &ctx);
    assert!(progress.contains("[4/7] RUN echo build"), "{progress}");
    assert!(progress.contains("exporting to image"), "{progress}");
    assert_eq!(cached_steps(&progress), 0, "{progress}");

    let img = inspect(&b, "app:1");
    assert_eq!(img["Id"], id.trim());
    assert_eq!(
        img["Config"]["Cmd"],
        serde_json::json!(["cat", "/app/files"])
    );
    assert_eq!(img["Config"]["WorkingDir"], "/app");
    let env: Vec<String> = serde_json::from_value(img["Config"]["Env"].clone()).unwrap();
    assert!(env.contains(&"APP=/app".to_string()), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");

    let cfg = config(&b, &id);
    let history = cfg["history"].as_array().unwrap();
    let built: Vec<&Value> = history.iter().rev().take(6).collect();
    let by: Vec<&str> = built
        .iter()
        .rev()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(by[0], "ENV APP=/app");
    assert_eq!(by[1], "WORKDIR /app");
    assert!(
        by[2].starts_with("RUN /bin/sh -c echo build") && by[2].ends_with("# buildkit"),
        "{by:?}"
    );
    assert_eq!(by[3], "COPY src/ /app/src/ # buildkit");
    assert_eq!(by[5], "CMD [\"cat\" \"/app/files\"]");
    let empty: Vec<bool> = built
        .iter()
        .rev()
        .map(|h| h["empty_layer"].as_bool().unwrap_or(false))
        .collect();
    // WORKDIR made /app, which busybox lacks: a real layer, as with BuildKit.
    assert_eq!(empty, [true, false, false, false, false, true]);

    // The layers hold what the steps wrote.
    let out = b.ok(["run", "--rm", "app:1"]);
    assert_eq!(out.trim(), "2");
    let out = b.ok(["run", "--rm", "app:1", "cat", "/build.txt", "/app/all"]);
    assert_eq!(out, "build\nalpha\nbeta\n");

    // Nothing changed: every layer step is a hit and the image is the same.
    let (again, progress) = build_ok(&b, &["-t", "app:1"], &ctx);
    assert_eq!(again, id);
    assert_eq!(cached_steps(&progress), 4, "{progress}");

    // One source changed: the RUN before the COPY is a hit, the COPY and what follows run.
    fs::write(ctx.join("src/b.txt"), "beta 2\n").unwrap();
    let (changed, progress) = build_ok(&b, &["-t", "app:1"], &ctx);
    assert_ne!(changed, id);
    assert_eq!(cached_steps(&progress), 2, "{progress}");
    assert!(progress.contains("#4 CACHED"), "{progress}");
    let out = b.ok(["run", "--rm", "app:1", "cat", "/app/all"]);
    assert_eq!(out, "alpha\nbeta 2\n");

    // --no-cache runs everything again.
    let (_, progress) = build_ok(&b, &["--no-cache", "-t", "app:1"], &ctx);
    assert_eq!(cached_steps(&progress), 0, "{progress}");
    assert_no_leftovers(&b);
}

#[test]
fn build_multi_stage_copy_from_and_target() {
    let b = with_busybox();
    let df = "FROM busybox AS builder
RUN mkdir /out && echo built > /out/artifact
FROM busybox AS unused
RUN exit 9
FROM scratch AS final
COPY --from=builder /out/artifact /artifact
COPY --from=busybox /etc/passwd /passwd
FROM busybox AS test
RUN echo tested > /t
";
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    // The target needs only `builder`: the failing `unused` stage is never built.
    let (id, progress) = build_ok(&b, &["--target", "final", "-t", "final:1"], &ctx);
    assert!(!progress.contains("exit 9"), "{progress}");
    let cfg = config(&b, &id);
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    let layers: Vec<PathBuf> = fs::read_dir(b.root().join("layers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        layers
            .iter()
            .any(|l| fs::read_to_string(l.join("artifact")).ok().as_deref() == Some("built\n")),
        "no layer holds /artifact"
    );
    assert!(layers.iter().any(|l| l.join("passwd").is_file()));
    // The last stage is the default target.
    let (_, progress) = build_ok(&b, &["-t", "test:1"], &ctx);
    assert!(progress.contains("RUN echo tested"), "{progress}");
    assert!(!progress.contains("COPY --from=builder"), "{progress}");
}

#[test]
fn build_args_are_scoped_like_docker() {
    let b = with_busybox();
    let df = "ARG BASE=busybox
ARG GLOBAL=g1
FROM ${BASE}
ARG GLOBAL
ARG VERSION=1.0
ARG UNSET
ENV FROM_ARG=${VERSION}
RUN echo \"$GLOBAL $VERSION [$UNSET]\" > /args
LABEL version=${VERSION}
";
    let ctx = context(&b, "ctx", &[("Dockerfile", df)]);
    build_ok(&b, &["--build-arg", "VERSION=2.5", "-t", "args:1"], &ctx);
    let out = b.ok(["run", "--rm", "args:1", "cat", "/args"]);
    assert_eq!(out, "g1 2.5 []\n");
    let img = inspect(&b, "args:1");
    assert_eq!(img["Config"]["Labels"]["version"], "2.5");
    let env: Vec<String> = serde_json::from_value(img["Config"]["Env"].clone()).unwrap();
    assert!(env.contains(&"FROM_ARG=2.5".to_string()), "{env:?}");
    // ARGs are not part of the image environment.
    assert!(!env.iter().any(|e| e.starts_with("VERSION=")), "{env:?}");
    // Another build arg value misses the cache from the first step that sees it.
    let (_, progress) = build_ok(&b, &["--build-arg", "VERSION=3", "-t", "args:2"], &ctx);
    assert_eq!(cached_steps(&progress), 0, "{progress}");
    let out = b.ok(["run", "--rm", "args:2", "cat", "/args"]);
    assert_eq!(out, "g1 3 []\n");
}

#[test]
fn build_dockerignore_keeps_files_out() {
    let (b, ctx) = busybox_and_context(&[
        ("Dockerfile", "FROM scratch\nCOPY . /ctx/\n"),
        (".dockerignore", "*.log\nsecret/\ndocs/**\n!docs/keep.md\n"),
        ("app.txt", "app"),
        ("debug.log", "noise"),
        ("secret/key", "k"),
        ("docs/drop.md", "d"),
        ("docs/keep.md", "keep"),
    ]);
    let (id, _) = build_ok(&b, &["-t", "ign:1"], &ctx);
    let cfg = config(&b, &id);
    let diff = cfg["rootfs"]["diff_ids"][0].as_str().unwrap().to_string();
    let layer = b
        .root()
        .join("layers")
        .join(diff.trim_start_matches("sha256:"));
    assert!(layer.join("ctx/app.txt").is_file());
    assert!(layer.join("ctx/docs/keep.md").is_file());
    assert!(!layer.join("ctx/debug.log").exists());
    assert!(!layer.join("ctx/secret").exists());
    assert!(!layer.join("ctx/docs/drop.md").exists());
}

#[test]
fn build_failing_run_leaves_no_image_and_nothing_behind() {
    let (b, ctx) = busybox_and_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo about to fail && exit 3\nRUN echo never\n",
    )]);
    let before = b.ok(["images", "-q"]);
    let run = build(&b, &["-t", "bad:1"], &ctx);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("about to fail"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "process \"/bin/sh -c echo about to fail && exit 3\" did not complete successfully: exit code: 3"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("never"), "{}", run.stderr);
    assert_eq!(b.ok(["images", "-q"]), before);
    assert_no_leftovers(&b);
}

#[test]
fn build_check_reports_line_numbered_problems() {
    let b = Berth::new();
    let ctx = context(
        &b,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN true\nCOPY --from=nowhere /a /b\nBOGUS x\n",
        )],
    );
    let run = build(&b, &["--check"], &ctx);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains(":4:"), "{}", run.stderr);
    let ok = context(
        &b,
        "ok",
        &[("Dockerfile", "FROM busybox\nCMD [\"true\"]\n")],
    );
    let run = build(&b, &["--check"], &ok);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // --check builds nothing.
    assert_eq!(b.ok(["images", "-q"]), "");
}

#[test]
fn build_dockerfile_and_context_from_stdin() {
    let (b, ctx) = busybox_and_context(&[("hello.txt", "hi from the context\n")]);
    let ctx_s = ctx.display().to_string();
    let run = b.run_with_input(
        ["build", "-q", "-f", "-", "-t", "stdin:1", ctx_s.as_str()],
        b"FROM busybox\nCOPY hello.txt /\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.trim().starts_with("sha256:"), "{}", run.stdout);
    assert_eq!(
        b.ok(["run", "--rm", "stdin:1", "cat", "/hello.txt"]),
        "hi from the context\n"
    );

    // A tar on stdin is the context, with its Dockerfile inside.
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in [
        (
            "Dockerfile",
            &b"FROM busybox\nCOPY data.txt /data.txt\n"[..],
        ),
        ("data.txt", b"from a tar\n"),
    ] {
        append_file(&mut tar, name, data);
    }
    let bytes = tar.into_inner().unwrap();
    let run = b.run_with_input(["build", "-q", "-t", "tar:1", "-"], &bytes);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        b.ok(["run", "--rm", "tar:1", "cat", "/data.txt"]),
        "from a tar\n"
    );

    // A plain Dockerfile on stdin has an empty context.
    let run = b.run_with_input(
        ["build", "-q", "-t", "plain:1", "-"],
        b"FROM busybox\nENV X=1\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn build_add_local_tar_extracts_it() {
    let (b, ctx) = busybox_and_context(&[
        (
            "Dockerfile",
            "FROM busybox\nADD files.tar.gz /opt/\nADD plain.txt /opt/plain.txt\n",
        ),
        ("plain.txt", "plain\n"),
    ]);
    let gz = fs::File::create(ctx.join("files.tar.gz")).unwrap();
    let enc = flate2::write::GzEncoder::new(gz, flate2::Compression::default());
    let mut tar = tar::Builder::new(enc);
    let data = b"inside the tar\n";
    append_file(&mut tar, "dir/inner.txt", data);
    tar.into_inner().unwrap().finish().unwrap();
    build_ok(&b, &["-t", "add:1"], &ctx);
    let out = b.ok([
        "run",
        "--rm",
        "add:1",
        "cat",
        "/opt/dir/inner.txt",
        "/opt/plain.txt",
    ]);
    assert_eq!(out, "inside the tar\nplain\n");
}

/// Serves `body` over HTTP on 127.0.0.1 for any number of requests.
fn serve(body: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    format!("http://{addr}/files/remote.txt")
}

#[test]
fn build_add_url_verifies_checksum() {
    use sha2::Digest as _;
    let b = with_busybox();
    let body: &'static [u8] = b"remote content\n";
    let url = serve(body);
    let sum = format!("sha256:{}", hex::encode(sha2::Sha256::digest(body)));
    let good = format!("FROM busybox\nADD --checksum={sum} {url} /srv/\n");
    let ctx = context(&b, "good", &[("Dockerfile", &good)]);
    build_ok(&b, &["-t", "url:1"], &ctx);
    assert_eq!(
        b.ok(["run", "--rm", "url:1", "cat", "/srv/remote.txt"]),
        "remote content\n"
    );

    let bad = format!(
        "FROM busybox\nADD --checksum=sha256:{} {url} /srv/\n",
        "0".repeat(64)
    );
    let ctx = context(&b, "bad", &[("Dockerfile", &bad)]);
    let run = build(&b, &["-t", "url:2"], &ctx);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("digest mismatch"), "{}", run.stderr);
    assert_no_leftovers(&b);
}

#[test]
fn build_source_date_epoch_is_reproducible() {
    let files: &[(&str, &str)] = &[
        (
            "Dockerfile",
            "FROM scratch\nCOPY . /src/\nENV A=1\nLABEL l=v\nCMD [\"/x\"]\n",
        ),
        ("one.txt", "1\n"),
        ("dir/two.txt", "2\n"),
    ];
    let ids: Vec<String> = (0..2)
        .map(|i| {
            let b = Berth::new();
            let ctx = context(&b, "ctx", files);
            // Different mtimes in each copy of the context.
            std::thread::sleep(std::time::Duration::from_millis(1100 * i));
            fs::write(ctx.join("one.txt"), "1\n").unwrap();
            let (id, _) = build_ok(&b, &["--build-arg", "SOURCE_DATE_EPOCH=1700000000"], &ctx);
            let cfg = config(&b, &id);
            assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
            id
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn builder_prune_empties_the_cache() {
    let (b, ctx) = busybox_and_context(&[("Dockerfile", "FROM busybox\nRUN echo x > /x\n")]);
    build_ok(&b, &["-t", "p:1"], &ctx);
    let (_, progress) = build_ok(&b, &["-t", "p:1"], &ctx);
    assert_eq!(cached_steps(&progress), 1);
    let out = b.ok(["builder", "prune", "-f"]);
    assert!(out.starts_with("Total:"), "{out}");
    let (_, progress) = build_ok(&b, &["-t", "p:1"], &ctx);
    assert_eq!(cached_steps(&progress), 0, "{progress}");
}

#[test]
fn build_onbuild_heredoc_secret_cache_mount_and_chmod() {
    let b = with_busybox();
    let base = context(
        &b,
        "base",
        &[(
            "Dockerfile",
            "FROM busybox\nONBUILD RUN echo triggered > /onbuild\n",
        )],
    );
    build_ok(&b, &["-t", "base:1"], &base);
    let img = inspect(&b, "base:1");
    assert_eq!(
        img["Config"]["OnBuild"],
        serde_json::json!(["RUN echo triggered > /onbuild"])
    );

    let secret = b.dir().join("token");
    fs::write(&secret, "s3cret").unwrap();
    let df = "FROM base:1
RUN <<EOF
echo from heredoc > /heredoc
EOF
RUN --mount=type=secret,id=token cat /run/secrets/token > /seen-secret
RUN --mount=type=cache,target=/cache echo x >> /cache/runs && wc -l < /cache/runs > /cache-count
COPY --chmod=600 --chown=1000:1000 f.txt /f.txt
USER 1000
";
    let ctx = context(&b, "ctx", &[("Dockerfile", df), ("f.txt", "f\n")]);
    let secret_arg = format!("id=token,src={}", secret.display());
    let (id, _) = build_ok(&b, &["--secret", &secret_arg, "-t", "child:1"], &ctx);
    let out = b.ok([
        "run",
        "--rm",
        "-u",
        "0",
        "child:1",
        "cat",
        "/onbuild",
        "/heredoc",
        "/seen-secret",
        "/cache-count",
    ]);
    assert_eq!(out, "triggered\nfrom heredoc\ns3cret1\n");
    let out = b.ok(["run", "--rm", "-u", "0", "child:1", "ls", "-ln", "/f.txt"]);
    assert!(
        out.starts_with("-rw-------") && out.contains(" 1000 "),
        "{out}"
    );
    // Triggers are not inherited.
    let cfg = config(&b, &id);
    assert!(cfg["config"]["OnBuild"].is_null());
    assert_eq!(cfg["config"]["User"], "1000");
    // The cache mount persists across builds.
    build_ok(
        &b,
        &["--no-cache", "--secret", &secret_arg, "-t", "child:2"],
        &ctx,
    );
    let out = b.ok(["run", "--rm", "-u", "0", "child:2", "cat", "/cache-count"]);
    assert_eq!(out, "2\n");
}

#[test]
fn build_workdir_exists_in_the_image() {
    let (b, ctx) = busybox_and_context(&[(
        "Dockerfile",
        "FROM busybox\nWORKDIR /srv/app\nWORKDIR data\nCMD [\"pwd\"]\n",
    )]);
    build_ok(&b, &["-t", "wd:1"], &ctx);
    assert_eq!(b.ok(["run", "--rm", "wd:1"]), "/srv/app/data\n");
}
