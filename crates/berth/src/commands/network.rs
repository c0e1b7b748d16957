//! `network create/ls/inspect/rm/prune/connect/disconnect`, `system reset` and the hidden
//! `dns-server`: thin wrappers over `berth_engine::network`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Result;
use berth_engine::network::endpoint::EndpointOptions;
use berth_engine::network::manage::NetworkCreate;
use berth_engine::{Engine, EngineError};
use serde_json::{json, Value};

use super::Failure;
use crate::cli::{
    DnsServerArgs, GlobalArgs, NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs,
    NetworkInspectArgs, NetworkLsArgs, NetworkPruneArgs, NetworkRmArgs, ResetArgs,
};
use crate::output::Listing;

fn engine_error(err: EngineError) -> anyhow::Error {
    Failure {
        code: 1,
        message: err.to_string(),
    }
    .into()
}

fn usage(message: String) -> anyhow::Error {
    Failure { code: 125, message }.into()
}

fn labels(raw: &[String]) -> BTreeMap<String, String> {
    raw.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn parse_filters(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| usage(format!("bad format of filter (expected name=value): {f}")))
        })
        .collect()
}

pub fn create(engine: &Engine, args: NetworkCreateArgs) -> Result<ExitCode> {
    let subnet = args
        .subnet
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: String| engine_error(EngineError::InvalidArgument(e)))?;
    let gateway = args
        .gateway
        .as_deref()
        .map(|g| {
            g.parse().map_err(|_| {
                engine_error(EngineError::InvalidArgument(format!(
                    "invalid gateway address: {g}"
                )))
            })
        })
        .transpose()?;
    let net = engine
        .create_network(&NetworkCreate {
            name: args.name,
            driver: args.driver,
            subnet,
            gateway,
            internal: args.internal,
            labels: labels(&args.label),
        })
        .map_err(engine_error)?;
    println!("{}", net.id);
    Ok(ExitCode::SUCCESS)
}

fn ls_header(field: &str) -> Option<&'static str> {
    Some(match field {
        "ID" => "NETWORK ID",
        "Name" => "NAME",
        "Driver" => "DRIVER",
        "Scope" => "SCOPE",
        "IPv6" => "IPV6",
        "Internal" => "INTERNAL",
        "Labels" => "LABELS",
        "CreatedAt" => "CREATED AT",
        _ => return None,
    })
}

pub fn ls(engine: &Engine, args: NetworkLsArgs) -> Result<ExitCode> {
    let filters = parse_filters(&args.filter)?;
    let nets = engine.list_networks(&filters).map_err(engine_error)?;
    let id = |n: &berth_engine::network::Network| {
        if args.no_trunc {
            n.id.clone()
        } else {
            n.short_id().to_string()
        }
    };
    if args.quiet {
        for n in &nets {
            println!("{}", id(n));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let columns = vec![
        ("NETWORK ID", "ID"),
        ("NAME", "Name"),
        ("DRIVER", "Driver"),
        ("SCOPE", "Scope"),
    ];
    let listing = Listing::new(args.format.as_deref(), columns, ls_header)?;
    let rows: Vec<Value> = nets
        .iter()
        .map(|n| {
            let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            json!({
                "ID": id(n),
                "Name": n.name,
                "Driver": n.driver,
                "Scope": "local",
                "IPv6": "false",
                "Internal": n.internal.to_string(),
                "Labels": labels.join(","),
                "CreatedAt": chrono::DateTime::from_timestamp(n.created / 1_000_000_000, 0)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
                    .unwrap_or_default(),
            })
        })
        .collect();
    listing.print(&rows)?;
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(engine: &Engine, args: NetworkInspectArgs) -> Result<ExitCode> {
    super::image::print_inspected(&args.networks, args.format.as_deref(), |name| {
        let net = engine.network(name).map_err(|e| anyhow::anyhow!("{e}"))?;
        engine
            .inspect_network(&net)
            .map_err(|e| anyhow::anyhow!("{e}"))
    })
}

pub fn rm(engine: &Engine, args: NetworkRmArgs) -> Result<ExitCode> {
    let failures = args
        .networks
        .iter()
        .filter(|name| match engine.remove_network(name) {
            Ok(_) => {
                println!("{name}");
                false
            }
            Err(EngineError::NotFound(_)) if args.force => false,
            Err(err) => {
                eprintln!("Error response from daemon: {err}");
                true
            }
        })
        .count();
    Ok(ExitCode::from(u8::from(failures > 0)))
}

pub fn prune(engine: &Engine, args: NetworkPruneArgs) -> Result<ExitCode> {
    let filter = super::system::prune_filter(&args.filter, &["label", "label!", "until"])?;
    if !args.force && !super::image::confirm("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ")? {
        return Ok(ExitCode::SUCCESS);
    }
    let removed = engine.prune_networks(&filter).map_err(engine_error)?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for name in removed {
            println!("{name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn endpoint_options(aliases: Vec<String>, ip: Option<String>) -> Result<EndpointOptions> {
    let ip = ip
        .map(|ip| {
            ip.parse()
                .map_err(|_| usage(format!("invalid IPv4 address: {ip}")))
        })
        .transpose()?;
    Ok(EndpointOptions { aliases, ip })
}

pub fn connect(engine: &Engine, args: NetworkConnectArgs) -> Result<ExitCode> {
    let opts = endpoint_options(args.alias, args.ip)?;
    engine
        .connect_network(&args.network, &args.container, &opts)
        .map_err(engine_error)?;
    Ok(ExitCode::SUCCESS)
}

pub fn disconnect(engine: &Engine, args: NetworkDisconnectArgs) -> Result<ExitCode> {
    engine
        .disconnect_network(&args.network, &args.container, args.force)
        .map_err(engine_error)?;
    Ok(ExitCode::SUCCESS)
}

/// `--network-alias` and `--ip` of `run`/`create`.
pub fn run_endpoint(aliases: &[String], ip: &Option<String>) -> Result<EndpointOptions> {
    endpoint_options(aliases.to_vec(), ip.clone())
}

/// `system reset -f`: every container, network, image and volume goes, as with podman.
pub fn reset(engine: Engine, global: &GlobalArgs, args: ResetArgs) -> Result<ExitCode> {
    if !args.force
        && !super::image::confirm("WARNING! This will remove all containers, networks, images and volumes.\nAre you sure you want to continue? [y/N] ")?
    {
        return Ok(ExitCode::SUCCESS);
    }
    for c in engine.containers().map_err(engine_error)? {
        if let Err(err) = engine.remove_container(&c.id, true) {
            eprintln!("Error: failed to remove container {}: {err}", c.id);
        }
    }
    engine.reset_networks().map_err(engine_error)?;
    drop(engine);
    for dir in [&global.root, &global.runroot] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else if path.file_name().is_some_and(|n| n == "daemon.json") {
                // Configuration, not data.
                Ok(())
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(err) = removed {
                eprintln!("Error: failed to remove {}: {err}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The hidden `berth dns-server` process.
pub fn dns_server(global: &GlobalArgs, args: DnsServerArgs) -> Result<ExitCode> {
    let code = berth_engine::network::dns::server_main(
        &global.root,
        &global.runroot,
        &args.network,
        args.ready_fd,
    );
    Ok(ExitCode::from(code as u8))
}
