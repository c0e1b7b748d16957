//! `version`, `info`, `system df` and the generic `inspect`.

use std::process::ExitCode;

use anyhow::Result;
use berth_engine::Engine;
use serde_json::{json, Value};

use crate::cli::{DfArgs, GlobalArgs, InfoArgs, InspectArgs, VersionArgs};
use crate::output::units::human_size;
use crate::output::{Listing, Template};

fn render_or_print(format: Option<&str>, doc: &Value, plain: impl FnOnce()) -> Result<()> {
    match format {
        None => plain(),
        Some("json") => println!("{}", serde_json::to_string(doc)?),
        Some(f) => println!("{}", Template::parse(f)?.render(doc)?),
    }
    Ok(())
}

pub fn version(_global: &GlobalArgs, args: VersionArgs) -> Result<ExitCode> {
    let doc = json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "ApiVersion": "1.43",
            "Os": std::env::consts::OS,
            "Arch": berth_image::config::host_architecture(),
        }
    });
    render_or_print(args.format.as_deref(), &doc, || {
        println!("Client: berth");
        println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
        println!(" API version:       1.43");
        println!(
            " OS/Arch:           {}/{}",
            std::env::consts::OS,
            berth_image::config::host_architecture()
        );
        println!(" Daemonless:        true");
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn info(engine: &Engine, args: InfoArgs) -> Result<ExitCode> {
    let doc = engine.info()?;
    render_or_print(args.format.as_deref(), &doc, || {
        println!("Client: berth {}", env!("CARGO_PKG_VERSION"));
        println!();
        println!("Server:");
        for (key, label) in [
            ("Containers", "Containers"),
            ("Images", "Images"),
            ("Driver", "Storage Driver"),
            ("CgroupVersion", "Cgroup Version"),
            ("KernelVersion", "Kernel Version"),
            ("OperatingSystem", "Operating System"),
            ("Architecture", "Architecture"),
            ("NCPU", "CPUs"),
            ("DockerRootDir", "Berth Root Dir"),
        ] {
            let value = match &doc[key] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!(" {label}: {value}");
        }
        if let Some(Value::Array(platforms)) = doc.get("Platforms") {
            let names: Vec<String> = platforms
                .iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect();
            println!(" Platforms: {}", names.join(", "));
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn df(engine: &Engine, args: DfArgs) -> Result<ExitCode> {
    let usage = engine.disk_usage()?;
    let rows: Vec<Value> = usage
        .iter()
        .map(|u| {
            let pct = (u.reclaimable * 100).checked_div(u.size).unwrap_or(0);
            json!({
                "Type": u.kind,
                "TotalCount": u.total.to_string(),
                "Active": u.active.to_string(),
                "Size": human_size(u.size),
                "Reclaimable": format!("{} ({pct}%)", human_size(u.reclaimable)),
            })
        })
        .collect();
    let listing = Listing::new(
        args.format.as_deref(),
        vec![
            ("TYPE", "Type"),
            ("TOTAL", "TotalCount"),
            ("ACTIVE", "Active"),
            ("SIZE", "Size"),
            ("RECLAIMABLE", "Reclaimable"),
        ],
        |f| match f {
            "TotalCount" => Some("TOTAL"),
            _ => None,
        },
    )?;
    listing.print(&rows)?;
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(engine: &Engine, args: InspectArgs) -> Result<ExitCode> {
    if let Some(kind) = args.kind.as_deref() {
        if kind != "image" {
            anyhow::bail!("\"{kind}\" is not a valid value for --type");
        }
    }
    super::image::print_inspected(&args.objects, args.format.as_deref(), |name| {
        engine
            .inspect_image(name)
            .map_err(|_| anyhow::anyhow!("No such object: {name}"))
    })
}
