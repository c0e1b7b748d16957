//! Side-by-side benchmarks: each scenario runs with berth and, where they are running, with
//! Docker and podman (`../shared/anchors/start.sh`), several times; it prints medians and
//! berth/other ratios. Inputs come from `../shared/anchors/bench-inputs.sh` so every engine does
//! the same work. These are measurements, not tests: nothing here asserts a time.

mod engines;
mod scenarios;

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Benchmark berth side by side with Docker and podman")]
struct Args {
    /// Scenarios to run (default: all): import, images, inspect, pull, push, build, run-none,
    /// run-bridge, publish
    scenarios: Vec<String>,
    /// How many timed repetitions per engine
    #[arg(short = 'n', long, default_value_t = 5)]
    runs: usize,
    /// The berth binary to measure
    #[arg(long, default_value = "target/release/berth")]
    berth: PathBuf,
    /// Where bench-inputs.sh put its files
    #[arg(long, env = "ANCHORS", default_value = "/tmp/anchors")]
    anchors: PathBuf,
    /// Only measure berth
    #[arg(long)]
    berth_only: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let engines = engines::detect(&args.berth, &args.anchors, args.berth_only)?;
    let inputs = args.anchors.join("inputs");
    let wanted: Vec<String> = if args.scenarios.is_empty() {
        scenarios::ALL.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.clone()
    };
    for name in &wanted {
        let scenario = scenarios::by_name(name).ok_or_else(|| {
            anyhow::anyhow!("unknown scenario {name}; known: {:?}", scenarios::ALL)
        })?;
        scenarios::report(name, scenario(&engines, &inputs, args.runs)?);
    }
    Ok(())
}
