//! The scenarios. Each returns, per engine, the timed samples in seconds.

use std::path::Path;
use std::time::Instant;

use crate::engines::Engine;

pub type Samples = Vec<(&'static str, Vec<f64>)>;
type Scenario = fn(&[Engine], &Path, usize) -> anyhow::Result<Samples>;

pub const ALL: &[&str] = &["import", "images", "inspect"];

pub fn by_name(name: &str) -> Option<Scenario> {
    Some(match name {
        "import" => import,
        "images" => images,
        "inspect" => inspect,
        _ => return None,
    })
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
    let tar = inputs.join("debian-rootfs.tar");
    anyhow::ensure!(
        tar.exists(),
        "{} missing: run ../shared/anchors/bench-inputs.sh",
        tar.display()
    );
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
    let tar = inputs.join("busybox-rootfs.tar");
    anyhow::ensure!(
        tar.exists(),
        "{} missing: run ../shared/anchors/bench-inputs.sh",
        tar.display()
    );
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
