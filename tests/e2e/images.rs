//! Image commands on real busybox images: import, images, tag, rmi, inspect, history, prune, df.

use std::io::{Read, Write};
use std::net::TcpListener;

use berth_tests::Berth;
use serde_json::Value;

fn inspect(b: &Berth, name: &str) -> Value {
    let out = b.ok(["image", "inspect", name]);
    let docs: Value = serde_json::from_str(&out).unwrap();
    docs[0].clone()
}

#[test]
fn import_from_file_names_and_lists_the_image() {
    let b = Berth::new();
    let id = b.import_busybox("busybox");
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let out = b.ok(["images"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("  ")
        .filter(|s| !s.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(header, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    let row = lines.next().unwrap();
    assert!(row.starts_with("busybox"), "{row}");
    assert!(row.contains("latest") && row.contains(&id[7..19]), "{row}");
    assert!(row.contains("MB"), "busybox is about 2 MB: {row}");
    assert_eq!(b.ok(["images", "-q"]).trim(), &id[7..19]);
    assert_eq!(b.ok(["images", "-q", "--no-trunc"]).trim(), id);
}

#[test]
fn import_from_stdin_gzip_and_url() {
    let b = Berth::new();
    let tar = std::fs::read(b.busybox_tar()).unwrap();

    let run = b.run_with_input(["import", "-", "from-stdin:1"], &tar);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let gz_path = b.dir().join("busybox.tar.gz");
    std::fs::write(&gz_path, &gz).unwrap();
    b.ok(["import".as_ref(), gz_path.as_os_str(), "from-gzip".as_ref()]);

    // A one-shot HTTP server on loopback.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = tar.clone();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = conn.read(&mut request);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&body).unwrap();
    });
    b.ok([
        "import",
        &format!("http://127.0.0.1:{port}/busybox.tar"),
        "from-url",
    ]);
    server.join().unwrap();

    // The same content gives the same layer whichever way it came.
    let layers = |name: &str| inspect(&b, name)["RootFS"]["Layers"].clone();
    assert_eq!(layers("from-stdin:1"), layers("from-url"));
    assert_eq!(layers("from-gzip"), layers("from-url"));
}

#[test]
fn import_changes_and_message_set_the_config() {
    let b = Berth::new();
    let tar = b.busybox_tar();
    b.ok([
        "import".as_ref(),
        "-c".as_ref(),
        "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]".as_ref(),
        "-c".as_ref(),
        "ENV FOO=bar".as_ref(),
        "-c".as_ref(),
        "WORKDIR /www".as_ref(),
        "-c".as_ref(),
        "EXPOSE 8080".as_ref(),
        "-c".as_ref(),
        "USER nobody".as_ref(),
        "-c".as_ref(),
        "LABEL team=berth".as_ref(),
        "-c".as_ref(),
        "ENTRYPOINT [\"/bin/busybox\"]".as_ref(),
        "-c".as_ref(),
        "VOLUME /data".as_ref(),
        "-m".as_ref(),
        "hello import".as_ref(),
        tar.as_os_str(),
        "configured:v1".as_ref(),
    ]);
    let doc = inspect(&b, "configured:v1");
    let config = &doc["Config"];
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "echo hi"])
    );
    assert_eq!(config["Env"], serde_json::json!(["FOO=bar"]));
    assert_eq!(config["WorkingDir"], "/www");
    assert_eq!(config["User"], "nobody");
    assert_eq!(config["Labels"]["team"], "berth");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/bin/busybox"]));
    assert!(config["ExposedPorts"]["8080/tcp"].is_object());
    assert!(config["Volumes"]["/data"].is_object());
    assert_eq!(doc["Comment"], "hello import");
    assert!(b.ok(["history", "configured:v1"]).contains("hello import"));

    let bad = b.fails([
        "import".as_ref(),
        "-c".as_ref(),
        "RUN rm -rf /".as_ref(),
        tar.as_os_str(),
    ]);
    assert!(
        bad.stderr.contains("RUN is not a valid change command"),
        "{}",
        bad.stderr
    );
    assert_eq!(bad.stderr.trim().lines().count(), 1);
    assert_eq!(
        b.ok(["images", "-q"]).lines().count(),
        1,
        "a rejected import stores nothing"
    );
}

#[test]
fn import_rejects_bad_input_and_keeps_the_store() {
    let b = Berth::new();
    b.import_busybox("busybox");
    // Everything but CREATED, which ages while the test runs.
    let images = || {
        b.ok([
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}",
        ])
    };
    let before = images();
    let missing = b.fails(["import", "/nonexistent.tar", "x"]);
    assert!(
        missing.stderr.contains("/nonexistent.tar"),
        "{}",
        missing.stderr
    );
    let not_tar = b.dir().join("garbage.tar");
    std::fs::write(&not_tar, vec![7u8; 4096]).unwrap();
    b.fails(["import".as_ref(), not_tar.as_os_str(), "garbage".as_ref()]);
    let bad_name = b.fails([
        "import".as_ref(),
        b.busybox_tar().as_os_str(),
        "Bad:Name".as_ref(),
    ]);
    assert!(
        bad_name.stderr.contains("invalid reference format"),
        "{}",
        bad_name.stderr
    );
    assert_eq!(images(), before);
    let leftovers: Vec<_> = std::fs::read_dir(b.root().join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn tags_move_and_rmi_untags_before_deleting() {
    let b = Berth::new();
    let id = b.import_busybox("busybox");
    b.ok(["tag", "busybox", "localhost:5000/team/app:1.2"]);
    b.ok(["tag", &id[7..19], "second"]);
    let repos = b.ok(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut repos: Vec<&str> = repos.lines().collect();
    repos.sort();
    assert_eq!(
        repos,
        [
            "busybox:latest",
            "localhost:5000/team/app:1.2",
            "second:latest"
        ]
    );

    // By ID with several names: refused without -f.
    let conflict = b.fails(["rmi", &id[7..19]]);
    assert!(
        conflict.stderr.contains("must be forced"),
        "{}",
        conflict.stderr
    );

    // By name: only the name goes while other names remain.
    assert_eq!(b.ok(["rmi", "second"]).trim(), "Untagged: second:latest");
    assert_eq!(
        b.ok(["rmi", "localhost:5000/team/app:1.2"]).trim(),
        "Untagged: localhost:5000/team/app:1.2"
    );
    let out = b.ok(["rmi", "busybox"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert_eq!(b.ok(["images", "-q"]), "");
    let layers: Vec<_> = std::fs::read_dir(b.root().join("layers"))
        .unwrap()
        .collect();
    assert!(
        layers.is_empty(),
        "layers left after the last image went: {layers:?}"
    );

    let missing = b.fails(["rmi", "nothere"]);
    assert!(
        missing.stderr.contains("No such image: nothere"),
        "{}",
        missing.stderr
    );
}

#[test]
fn moving_a_tag_leaves_a_dangling_image() {
    let b = Berth::new();
    let first = b.import_busybox("app:1");
    let tar2 = b.dir().join("other.tar");
    berth_tests::write_busybox_tar(&tar2, &[("/etc/motd", "v2\n")]);
    let second = b
        .ok(["import".as_ref(), tar2.as_os_str(), "app:1".as_ref()])
        .trim()
        .to_string();
    assert_ne!(first, second);
    let dangling = b.ok(["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    assert_eq!(dangling.trim(), first);
    let named = b.ok(["images", "-q", "--no-trunc", "--filter", "dangling=false"]);
    assert_eq!(named.trim(), second);
    let rows = b.ok(["images"]);
    assert!(rows.contains("<none>"), "{rows}");

    let out = b.ok(["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {first}")), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(b.ok(["images", "-q", "--no-trunc"]).trim(), second);
    b.ok(["image", "prune", "-a", "-f"]);
    assert_eq!(b.ok(["images", "-q"]), "");
}

#[test]
fn images_filters_and_formats() {
    let b = Berth::new();
    let tar = b.busybox_tar();
    b.ok([
        "import".as_ref(),
        "-c".as_ref(),
        "LABEL tier=web".as_ref(),
        tar.as_os_str(),
        "web:1".as_ref(),
    ]);
    let tar2 = b.dir().join("db.tar");
    berth_tests::write_busybox_tar(&tar2, &[("/db", "x")]);
    b.ok([
        "import".as_ref(),
        "-c".as_ref(),
        "LABEL tier=db".as_ref(),
        tar2.as_os_str(),
        "db:1".as_ref(),
    ]);

    let by_label = b.ok([
        "images",
        "--filter",
        "label=tier=web",
        "--format",
        "{{.Repository}}",
    ]);
    assert_eq!(by_label.trim(), "web");
    let by_key = b.ok(["images", "--filter", "label=tier", "-q"]);
    assert_eq!(by_key.lines().count(), 2);
    let by_ref = b.ok([
        "images",
        "--filter",
        "reference=d*",
        "--format",
        "{{.Repository}}",
    ]);
    assert_eq!(by_ref.trim(), "db");
    let positional = b.ok(["images", "web", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(positional.trim(), "web:1");

    let json_lines = b.ok(["images", "--format", "json"]);
    for line in json_lines.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        assert!(row["ID"].is_string() && row["Repository"].is_string() && row["Size"].is_string());
    }
    let table = b.ok(["images", "--format", "table {{.Repository}}\t{{.ID}}"]);
    assert!(
        table.lines().next().unwrap().starts_with("REPOSITORY"),
        "{table}"
    );
    assert!(
        table.lines().next().unwrap().contains("IMAGE ID"),
        "{table}"
    );
    let digests = b.ok(["images", "--digests"]);
    assert!(
        digests.lines().next().unwrap().contains("DIGEST"),
        "{digests}"
    );

    let bad = b.fails(["images", "--filter", "color=blue"]);
    assert!(bad.stderr.contains("invalid filter"), "{}", bad.stderr);
    let bad = b.fails(["images", "--format", "{{.Nope"]);
    assert!(bad.stderr.contains("template"), "{}", bad.stderr);
}

#[test]
fn inspect_has_dockers_shape() {
    let b = Berth::new();
    let id = b.import_busybox("busybox");
    let doc = inspect(&b, "busybox");
    assert_eq!(doc["Id"], id);
    assert_eq!(doc["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(doc["RepoDigests"], serde_json::json!([]));
    assert_eq!(doc["Os"], "linux");
    assert!(doc["Architecture"].is_string());
    assert!(doc["Size"].as_u64().unwrap() > 1_000_000);
    assert_eq!(doc["RootFS"]["Type"], "layers");
    assert_eq!(doc["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert!(doc["Created"].as_str().unwrap().ends_with('Z'));
    for key in [
        "Config",
        "Parent",
        "Comment",
        "DockerVersion",
        "Author",
        "GraphDriver",
        "Metadata",
    ] {
        assert!(doc.get(key).is_some(), "inspect lacks {key}");
    }
    // By short ID, full ID and the generic inspect; templates.
    assert_eq!(inspect(&b, &id[7..19])["Id"], id);
    assert_eq!(inspect(&b, &id)["Id"], id);
    assert_eq!(
        b.ok(["inspect", "--format", "{{.Id}}", "busybox"]).trim(),
        id
    );
    assert_eq!(
        b.ok(["image", "inspect", "-f", "{{json .RepoTags}}", "busybox"])
            .trim(),
        "[\"busybox:latest\"]"
    );
    let missing = b.fails(["image", "inspect", "busybox", "nope"]);
    assert!(
        missing.stderr.contains("No such image: nope"),
        "{}",
        missing.stderr
    );
    let partial: Value = serde_json::from_str(&missing.stdout).unwrap();
    assert_eq!(
        partial.as_array().unwrap().len(),
        1,
        "found names are still printed"
    );
}

#[test]
fn history_shows_steps() {
    let b = Berth::new();
    let id = b.import_busybox("busybox");
    let out = b.ok(["history", "busybox"]);
    let header = out.lines().next().unwrap();
    for col in ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"] {
        assert!(header.contains(col), "{header}");
    }
    let row = out.lines().nth(1).unwrap();
    assert!(row.starts_with(&id[7..19]), "{row}");
    assert!(row.contains("Imported from"), "{row}");
    assert_eq!(b.ok(["history", "-q", "--no-trunc", "busybox"]).trim(), id);
    let raw = b.ok(["history", "-H=false", "--format", "{{.Size}}", "busybox"]);
    assert!(raw.trim().parse::<u64>().unwrap() > 1_000_000, "{raw}");
}

#[test]
fn system_df_counts_images() {
    let b = Berth::new();
    b.import_busybox("busybox");
    let out = b.ok(["system", "df"]);
    let images = out
        .lines()
        .find(|l| l.starts_with("Images"))
        .expect("an Images row");
    assert!(images.split_whitespace().nth(1) == Some("1"), "{out}");
}
