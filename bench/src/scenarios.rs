//! The scenarios. Each returns, per engine, the timed samples in seconds.

use std::path::Path;
use std::time::Instant;

use crate::engines::Engine;

pub type Samples = Vec<(&'static str, Vec<f64>)>;
type Scenario = fn(&[Engine], &Path, usize) -> anyhow::Result<Samples>;

pub const ALL: &[&str] = &[
    "import",
    "images",
    "inspect",
    "pull",
    "push",
    "build",
    "run-none",
    "run-bridge",
    "publish",
];

pub fn by_name(name: &str) -> Option<Scenario> {
    Some(match name {
        "import" => import,
        "images" => images,
        "inspect" => inspect,
        "pull" => pull,
        "push" => push,
        "build" => build,
        "run-none" => run_none,
        "run-bridge" => run_bridge,
        "publish" => publish,
        _ => return None,
    })
}

/// `inputs/name`, which `bench-inputs.sh` makes.
fn input(inputs: &Path, name: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = inputs.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} missing: run ../shared/anchors/bench-inputs.sh",
        path.display()
    );
    Ok(path)
}

fn time(mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

/// Prints medians and berth/other ratios (below 1 means berth is faster).
pub fn report(name: &str, samples: Samples) {
    println!("== {name}");
    let berth = samples
        .iter()
        .find(|(e, _)| *e == "berth")
        .map(|(_, s)| median(s));
    for (engine, s) in &samples {
        let m = median(s);
        let ratio = match berth {
            Some(b) if *engine != "berth" => format!("  berth/{engine} = {:.3}", b / m),
            _ => String::new(),
        };
        println!(
            "{engine:>8}: median {:>9.4} s over {} runs{ratio}",
            m,
            s.len()
        );
    }
}

/// `import` of the debootstrap rootfs tar (≈206 MB), each run into a fresh name.
fn import(engines: &[Engine], inputs: &Path, runs: usize) -> anyhow::Result<Samples> {
    let tar = input(inputs, "debian-rootfs.tar")?;
    let tar = tar.display().to_string();
    let mut out = Vec::new();
    for engine in engines {
        let mut samples = Vec::new();
        for i in 0..runs {
            let name = format!("bench-import:{i}");
            // Remove first so every run imports into a store without that layer.
            let _ = engine.command().args(["rmi", "-f", &name]).status();
            if engine.is_berth() {
                let _ = engine
                    .command()
                    .args(["image", "prune", "-a", "-f"])
                    .status();
            }
            samples.push(time(|| engine.run(&["import", &tar, &name]).map(drop))?);
            let _ = engine.command().args(["rmi", "-f", &name]).status();
        }
        out.push((engine.name, samples));
    }
    Ok(out)
}

/// Tags one image 1,000 times (untimed), then times the listing command.
fn with_thousand_tags(engine: &Engine, inputs: &Path) -> anyhow::Result<()> {
    let tar = input(inputs, "busybox-rootfs.tar")?;
    let have = engine.run(&["images", "-q", "bench-many"])?;
    if have.lines().count() >= 1000 {
        return Ok(());
    }
    engine.run(&["import", &tar.display().to_string(), "bench-many:0"])?;
    for i in 1..1000 {
        engine.run(&["tag", "bench-many:0", &format!("bench-many:{i}")])?;
    }
    Ok(())
}

fn images(engines: &[Engine], inputs: &Path, runs: usize) -> anyhow::Result<Samples> {
    let mut out = Vec::new();
    for engine in engines {
        with_thousand_tags(engine, inputs)?;
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(time(|| engine.run(&["images"]).map(drop))?);
        }
        out.push((engine.name, samples));
    }
    Ok(out)
}

fn inspect(engines: &[Engine], inputs: &Path, runs: usize) -> anyhow::Result<Samples> {
    let mut out = Vec::new();
    for engine in engines {
        with_thousand_tags(engine, inputs)?;
        let mut samples = Vec::new();
        for i in 0..runs {
            let name = format!("bench-many:{}", i * 97 % 1000);
            samples.push(time(|| engine.run(&["image", "inspect", &name]).map(drop))?);
        }
        out.push((engine.name, samples));
    }
    Ok(out)
}

/// The anchor registry (`../shared/anchors/start.sh registry`), by the name every engine treats
/// as insecure (podman is configured for `localhost:5000`).
const REGISTRY: &str = "localhost:5000";

fn registry_running() -> anyhow::Result<()> {
    let ok = std::process::Command::new("curl")
        .args(["-fs", "http://127.0.0.1:5000/v2/"])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    anyhow::ensure!(
        ok,
        "no registry on 127.0.0.1:5000: run ../shared/anchors/start.sh registry"
    );
    Ok(())
}

/// Unlinks a repository's blobs (layers and config) so the next push of the same content to it
/// uploads everything again (and cannot mount it from there).
fn forget_repository(repo: &str, tag: &str) {
    let accept = "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";
    let url = format!("http://127.0.0.1:5000/v2/{repo}/manifests/{tag}");
    let Ok(out) = std::process::Command::new("curl")
        .args(["-fs", "-H", accept, &url])
        .output()
    else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    for part in text.split("\"digest\"").skip(1) {
        let Some(digest) = part.split('"').nth(1) else {
            continue;
        };
        let blob = format!("http://127.0.0.1:5000/v2/{repo}/blobs/{digest}");
        let _ = std::process::Command::new("curl")
            .args(["-fs", "-X", "DELETE", &blob])
            .output();
    }
}

fn remove_image(engine: &Engine, name: &str) {
    let _ = engine.command().args(["rmi", "-f", name]).status();
    if engine.is_berth() {
        let _ = engine
            .command()
            .args(["image", "prune", "-a", "-f"])
            .status();
    }
}

/// `push` of the imported Debian rootfs (one 206 MB layer, compressed to gzip on the way, as
/// every engine does for an uncompressed layer) to a repository that has none of its blobs.
fn push(engines: &[Engine], inputs: &Path, runs: usize) -> anyhow::Result<Samples> {
    registry_running()?;
    let tar = input(inputs, "debian-rootfs.tar")?;
    let tar = tar.display().to_string();
    let mut out = Vec::new();
    for engine in engines {
        let mut samples = Vec::new();
        for i in 0..runs {
            let repo = format!("bench/push-{}-{}-{i}", engine.name, std::process::id());
            let name = format!("{REGISTRY}/{repo}:1");
            // A fresh import each time, so no engine can reuse a compressed blob from a previous run.
            remove_image(engine, &name);
            engine.run(&["import", &tar, &name])?;
            samples.push(time(|| engine.run(&["push", &name]).map(drop))?);
            forget_repository(&repo, "1");
            remove_image(engine, &name);
        }
        out.push((engine.name, samples));
    }
    Ok(out)
}

/// `pull` of the Debian image (one gzip layer of ≈93 MB) from the local registry into a store
/// that does not have it.
fn pull(engines: &[Engine], inputs: &Path, runs: usize) -> anyhow::Result<Samples> {
    registry_running()?;
    let tar = input(inputs, "debian-rootfs.tar")?;
    let name = format!("{REGISTRY}/bench/debian:pull");
    // The image to pull: pushed once by Docker when it runs (the reference figures' image), else
    // by berth.
    let pusher = engines
        .iter()
        .find(|e| e.name == "docker")
        .unwrap_or(&engines[0]);
    pusher.run(&["import", &tar.display().to_string(), &name])?;
    pusher.run(&["push", &name])?;
    let mut out = Vec::new();
    for engine in engines {
        let mut samples = Vec::new();
        for _ in 0..runs {
            remove_image(engine, &name);
            samples.push(time(|| engine.run(&["pull", &name]).map(drop))?);
        }
        remove_image(engine, &name);
        out.push((engine.name, samples));
    }
    Ok(out)
}

/// `build` of the 7-step Dockerfile over the 24 MB, 2,000-file context (`build-ctx`), FROM the
/// imported debootstrap image. Three figures: cold (no cache), nothing changed, and one source
/// file changed (a line appended to `src/m3/f3.txt`). The first two are reported here; the
/// returned samples are the third.
fn build(engines: &[Engine], inputs: &Path, runs: usize) -> anyhow::Result<Samples> {
    let ctx_src = input(inputs, "build-ctx")?;
    input(&ctx_src, "Dockerfile")?;
    let tar = input(inputs, "debian-rootfs.tar")?;
    let work = tempfile::tempdir()?;
    let ctx = work.path().join("ctx");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&ctx_src)
        .arg(&ctx)
        .status()?;
    anyhow::ensure!(copied.success(), "cannot copy {}", ctx_src.display());
    let ctx_s = ctx.display().to_string();
    let changed_file = ctx.join("src/m3/f3.txt");
    let tag = "bench-build:latest";
    let (mut cold, mut warm, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for engine in engines {
        if engine
            .run(&["images", "-q", "debian:bookworm"])?
            .trim()
            .is_empty()
        {
            engine.run(&["import", &tar.display().to_string(), "debian:bookworm"])?;
        }
        let build = |extra: &[&str]| -> anyhow::Result<()> {
            let mut cmd = engine.command();
            cmd.env("DOCKER_BUILDKIT", "1").arg("build").args(extra);
            cmd.args(["-t", tag, &ctx_s]);
            let out = cmd.output()?;
            anyhow::ensure!(
                out.status.success(),
                "{} build failed: {}",
                engine.name,
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        };
        let (mut c, mut w, mut ch) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let _ = engine.command().args(["rmi", "-f", tag]).status();
            match engine.name {
                "podman" => {}
                _ => {
                    let _ = engine
                        .command()
                        .args(["builder", "prune", "-a", "-f"])
                        .status();
                }
            }
            let cold_args: &[&str] = if engine.name == "podman" {
                &["--no-cache"]
            } else {
                &[]
            };
            c.push(time(|| build(cold_args))?);
            w.push(time(|| build(&[]))?);
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&changed_file)?;
            std::io::Write::write_all(&mut f, b"one more line\n")?;
            drop(f);
            ch.push(time(|| build(&[]))?);
        }
        let _ = engine.command().args(["rmi", "-f", tag]).status();
        cold.push((engine.name, c));
        warm.push((engine.name, w));
        changed.push((engine.name, ch));
    }
    report("build (cold)", cold);
    report("build (nothing changed)", warm);
    println!("(next: build, one source file changed)");
    Ok(changed)
}

/// `run --rm --network none IMG true`: a container's whole life with no network.
fn run_none(engines: &[Engine], inputs: &Path, runs: usize) -> anyhow::Result<Samples> {
    run_rm(engines, inputs, runs, "none")
}

/// `run --rm --network bridge IMG true`: a container's whole life on the default bridge
/// (namespace, veth, address, teardown).
fn run_bridge(engines: &[Engine], inputs: &Path, runs: usize) -> anyhow::Result<Samples> {
    run_rm(engines, inputs, runs, "bridge")
}

/// Imports the busybox rootfs as `bench-busybox` unless the engine has it.
fn ensure_busybox(engine: &Engine, inputs: &Path) -> anyhow::Result<()> {
    let tar = input(inputs, "busybox-rootfs.tar")?;
    if engine
        .run(&["images", "-q", "bench-busybox"])?
        .trim()
        .is_empty()
    {
        engine.run(&["import", &tar.display().to_string(), "bench-busybox"])?;
    }
    Ok(())
}

/// `run --rm --network NETWORK bench-busybox true`, after one untimed warm-up run.
fn run_rm(
    engines: &[Engine],
    inputs: &Path,
    runs: usize,
    network: &str,
) -> anyhow::Result<Samples> {
    let args = ["run", "--rm", "--network", network, "bench-busybox", "true"];
    let mut out = Vec::new();
    for engine in engines {
        ensure_busybox(engine, inputs)?;
        engine.run(&args)?;
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(time(|| engine.run(&args).map(drop))?);
        }
        out.push((engine.name, samples));
    }
    Ok(out)
}

/// Throughput of busybox httpd through a published port on 127.0.0.1 against a container's
/// own address, with wrk. Samples are seconds per request (1 / requests per second), so the
/// printed `berth/direct` ratio is what publishing costs: 1.05 means 5 % slower.
///
/// The direct figure comes from a second, identical container. Measured against one container,
/// whichever path ran second would inherit the other's TIME_WAIT sockets in the container:
/// the host stamps TCP timestamps with a per-address-pair offset, so a SYN from 127.0.0.1
/// reusing a 4-tuple last used from the bridge's address fails the PAWS check and waits a
/// second to retransmit. The order alternates from pair to pair for the same reason.
fn publish(engines: &[Engine], inputs: &Path, runs: usize) -> anyhow::Result<Samples> {
    anyhow::ensure!(
        std::process::Command::new("wrk")
            .arg("--version")
            .output()
            .is_ok(),
        "wrk missing: apt-get install wrk"
    );
    let site = tempfile::tempdir()?;
    std::fs::write(site.path().join("index.html"), "x".repeat(1024))?;
    let volume = format!("{}:/www:ro", site.path().display());
    let mut out = Vec::new();
    for (i, engine) in engines.iter().enumerate() {
        ensure_busybox(engine, inputs)?;
        let port = 18_080 + i;
        let published = format!("127.0.0.1:{port}:80");
        let httpd = |name: &str, publish: &[&str]| {
            let mut args = vec!["run", "-d", "--name", name, "-v", &volume];
            args.extend(publish);
            args.extend(["bench-busybox", "httpd", "-f", "-p", "80", "-h", "/www"]);
            engine.run(&args)
        };
        let name = format!("bench-httpd-{}", std::process::id());
        let direct_name = format!("{name}-direct");
        let mut started = vec![&name];
        let measured = (|| {
            httpd(&name, &["-p", &published])?;
            if !engine.is_berth() {
                let mut via_port = Vec::new();
                for _ in 0..runs {
                    via_port.push(seconds_per_request(&format!("http://127.0.0.1:{port}/"))?);
                }
                return anyhow::Ok((via_port, Vec::new()));
            }
            started.push(&direct_name);
            httpd(&direct_name, &[])?;
            let ip = engine.run(&[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &direct_name,
            ])?;
            let urls = [
                format!("http://127.0.0.1:{port}/"),
                format!("http://{}/", ip.trim()),
            ];
            let (mut via_port, mut via_ip) = (Vec::new(), Vec::new());
            for run in 0..runs {
                let first = run % 2;
                let a = seconds_per_request(&urls[first])?;
                let b = seconds_per_request(&urls[1 - first])?;
                let (port_sample, ip_sample) = if first == 0 { (a, b) } else { (b, a) };
                via_port.push(port_sample);
                via_ip.push(ip_sample);
            }
            anyhow::Ok((via_port, via_ip))
        })();
        for started in started {
            engine.run(&["rm", "-f", started])?;
        }
        let (via_port, via_ip) = measured?;
        if engine.is_berth() {
            out.push(("direct", via_ip));
        }
        out.push((engine.name, via_port));
    }
    Ok(out)
}

/// One 3-second wrk run; busybox httpd closes every connection, so first wait for the
/// previous run's TIME_WAIT sockets to go, or port exhaustion would decide the figure.
fn seconds_per_request(url: &str) -> anyhow::Result<f64> {
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    while Instant::now() < deadline {
        let ss = std::process::Command::new("ss")
            .args(["-tanH", "state", "time-wait"])
            .output()?;
        if ss.stdout.iter().filter(|&&b| b == b'\n').count() < 100 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    let wrk = std::process::Command::new("wrk")
        .args(["-t2", "-c8", "-d3s", url])
        .output()?;
    let text = String::from_utf8_lossy(&wrk.stdout);
    let rps: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("wrk {url} printed no rate: {text}"))?;
    eprintln!("  {url}: {rps:.0} requests/s");
    Ok(1.0 / rps)
}
