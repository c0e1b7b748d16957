//! The volume commands, and the `--mount` flag of `run`/`create` (which Docker's CLI, too,
//! parses into the API's mount object before the daemon validates it).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Result};
use berth_engine::volume::list::VolumeFilter;
use berth_engine::volume::mounts::{
    BindOptions, DriverConfig, MountSpec, TmpfsOptions, VolumeOptions,
};
use berth_engine::volume::{Volume, VolumeRequest};
use berth_engine::{Engine, EngineError};
use serde_json::{json, Value};

use super::image::{confirm, print_inspected};
use crate::cli::{
    VolumeCommand, VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::output::units::{human_size, parse_ram};
use crate::output::Listing;

pub fn dispatch(engine: &Engine, command: VolumeCommand) -> Result<ExitCode> {
    match command {
        VolumeCommand::Create(a) => create(engine, a),
        VolumeCommand::Inspect(a) => inspect(engine, a),
        VolumeCommand::Ls(a) => ls(engine, a),
        VolumeCommand::Prune(a) => prune(engine, a),
        VolumeCommand::Rm(a) => rm(engine, a),
    }
}

/// A daemon-side failure as Docker's CLI prints it; exit status 1.
fn daemon_failure(err: EngineError) -> ExitCode {
    eprintln!("Error response from daemon: {err}");
    ExitCode::from(1)
}

/// `KEY=VALUE` pairs into a map (`KEY` alone means an empty value).
fn key_values(pairs: &[String]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn create(engine: &Engine, args: VolumeCreateArgs) -> Result<ExitCode> {
    let name = match (args.name, args.name_flag) {
        (Some(a), Some(b)) if a != b => bail!(
            "conflicting options: cannot specify a volume-name through both --name and as a positional arg"
        ),
        (a, b) => a.or(b),
    };
    let request = VolumeRequest {
        name,
        driver: Some(args.driver),
        labels: key_values(&args.label),
        options: key_values(&args.opt),
    };
    match engine.create_volume(&request) {
        Ok(volume) => {
            println!("{}", volume.name);
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Ok(daemon_failure(err)),
    }
}

fn inspect(engine: &Engine, args: VolumeInspectArgs) -> Result<ExitCode> {
    print_inspected(&args.volumes, args.format.as_deref(), |name| {
        Ok(engine.volume(name)?.inspect(engine.root()))
    })
}

/// A row of `volume ls` with Docker's field names.
fn ls_row(engine: &Engine, v: &Volume) -> Value {
    let labels: Vec<String> = v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let doc = v.inspect(engine.root());
    json!({
        "Availability": "N/A",
        "Driver": v.driver,
        "Group": "N/A",
        "Labels": labels.join(","),
        "Links": "N/A",
        "Mountpoint": doc["Mountpoint"],
        "Name": v.name,
        "Scope": "local",
        "Size": "N/A",
        "Status": "N/A",
    })
}

fn ls(engine: &Engine, args: VolumeLsArgs) -> Result<ExitCode> {
    let filter = VolumeFilter::parse(&args.filter)?;
    let volumes = engine.volumes(&filter)?;
    if args.quiet {
        for v in &volumes {
            println!("{}", v.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Value> = volumes.iter().map(|v| ls_row(engine, v)).collect();
    let listing = Listing::new(
        args.format.as_deref(),
        vec![("DRIVER", "Driver"), ("VOLUME NAME", "Name")],
        |field| match field {
            "Name" => Some("VOLUME NAME"),
            "Driver" => Some("DRIVER"),
            "Scope" => Some("SCOPE"),
            "Mountpoint" => Some("MOUNTPOINT"),
            "Labels" => Some("LABELS"),
            "Size" => Some("SIZE"),
            "Links" => Some("LINKS"),
            _ => None,
        },
    )?;
    listing.print(&rows)?;
    Ok(ExitCode::SUCCESS)
}

fn rm(engine: &Engine, args: VolumeRmArgs) -> Result<ExitCode> {
    super::each_reported(&args.volumes, |name| {
        engine.remove_volume(name, args.force)?;
        println!("{name}");
        Ok::<(), EngineError>(())
    })
}

fn prune(engine: &Engine, args: VolumePruneArgs) -> Result<ExitCode> {
    let filter = super::system::prune_filter(&args.filter, &["label", "label!"])?;
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all local volumes not used by at least one container."
        } else {
            "WARNING! This will remove anonymous local volumes not used by at least one container."
        };
        if !confirm(warning)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let report = engine.prune_volumes(args.all, &filter)?;
    if !report.removed.is_empty() {
        println!("Deleted Volumes:");
        for name in &report.removed {
            println!("{name}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(report.reclaimed));
    Ok(ExitCode::SUCCESS)
}

/// Splits a `--mount` value into its comma-separated fields, honouring double quotes (so
/// `volume-opt=o="size=1m,uid=1000"` stays one field), as the CSV reader Docker uses does.
fn csv_fields(text: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for ch in text.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            _ => fields.last_mut().expect("one field").push(ch),
        }
    }
    fields
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err(format!("invalid value for {key}: {value}")),
    }
}

fn volume(m: &mut MountSpec) -> &mut VolumeOptions {
    m.volume_options.get_or_insert_with(VolumeOptions::default)
}

/// `--mount type=…,src=…,dst=…,…` as Docker's CLI reads it.
pub fn parse_mount_flag(text: &str) -> Result<MountSpec, String> {
    let wrap =
        |message: String| format!("invalid argument \"{text}\" for \"--mount\" flag: {message}");
    let mut m = MountSpec {
        kind: "volume".into(),
        ..MountSpec::default()
    };
    for field in csv_fields(text) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => m.read_only = true,
                "volume-nocopy" => volume(&mut m).no_copy = true,
                _ => {
                    return Err(wrap(format!(
                        "invalid field '{field}' must be a key=value pair"
                    )))
                }
            }
            continue;
        };
        match key.as_str() {
            "type" => m.kind = value.to_string(),
            "source" | "src" => m.source = value.to_string(),
            "target" | "dst" | "destination" => m.target = value.to_string(),
            "readonly" | "ro" => m.read_only = parse_bool(&key, value).map_err(wrap)?,
            "consistency" => {}
            "bind-propagation" => {
                m.bind_options = Some(BindOptions {
                    propagation: value.to_string(),
                })
            }
            "volume-nocopy" => volume(&mut m).no_copy = parse_bool(&key, value).map_err(wrap)?,
            "volume-label" => {
                let (k, v) = value.split_once('=').unwrap_or((value, ""));
                volume(&mut m).labels.insert(k.to_string(), v.to_string());
            }
            "volume-driver" => {
                volume(&mut m)
                    .driver_config
                    .get_or_insert_with(DriverConfig::default)
                    .name = value.to_string()
            }
            "volume-opt" => {
                let (k, v) = value.split_once('=').unwrap_or((value, ""));
                volume(&mut m)
                    .driver_config
                    .get_or_insert_with(DriverConfig::default)
                    .options
                    .insert(k.to_string(), v.to_string());
            }
            "tmpfs-size" => {
                let size = parse_ram(value)
                    .map_err(|_| wrap(format!("invalid value for {key}: {value}")))?;
                m.tmpfs_options
                    .get_or_insert_with(TmpfsOptions::default)
                    .size_bytes = size;
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(value, 8)
                    .map_err(|_| wrap(format!("invalid value for {key}: {value}")))?;
                m.tmpfs_options
                    .get_or_insert_with(TmpfsOptions::default)
                    .mode = mode;
            }
            _ => return Err(wrap(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    if m.target.is_empty() {
        return Err(wrap("target is required".into()));
    }
    let mixed = |prefix: &str| {
        wrap(format!(
            "cannot mix '{prefix}-*' options with mount type '{}'",
            m.kind
        ))
    };
    if m.kind != "volume" && m.volume_options.is_some() {
        return Err(mixed("volume"));
    }
    if m.kind != "bind" && m.bind_options.is_some() {
        return Err(mixed("bind"));
    }
    if m.kind != "tmpfs" && m.tmpfs_options.is_some() {
        return Err(mixed("tmpfs"));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_flag_fields() {
        let m = parse_mount_flag(
            "type=volume,src=v,dst=/d,readonly,volume-nocopy,volume-opt=o=\"size=1m,uid=1\"",
        )
        .unwrap();
        assert_eq!(
            (m.source.as_str(), m.target.as_str(), m.read_only),
            ("v", "/d", true)
        );
        let opts = m.volume_options.unwrap();
        assert!(opts.no_copy);
        assert_eq!(opts.driver_config.unwrap().options["o"], "size=1m,uid=1");
        let t = parse_mount_flag("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=700").unwrap();
        let t = t.tmpfs_options.unwrap();
        assert_eq!((t.size_bytes, t.mode), (1 << 20, 0o700));
        assert!(parse_mount_flag("type=bind,src=/x").is_err());
        assert!(parse_mount_flag("type=bind,src=/x,dst=/y,tmpfs-size=1").is_err());
        assert!(parse_mount_flag("type=bind,bogus=1,dst=/y").is_err());
    }
}
