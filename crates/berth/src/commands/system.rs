//! `version`, `info`, `events`, `system df`, `system prune` and the generic `inspect`.

use std::io::{BufRead, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use berth_engine::events::{Event, EventFilter, Follower, Wake};
use berth_engine::system::{PruneFilter, SystemPrune};
use berth_engine::volume::list::parse_label;
use berth_engine::Engine;
use berth_image::store::RemovedImage;
use serde_json::{json, Value};

use super::container::parse_time;
use super::Failure;
use crate::cli::{
    DfArgs, EventsArgs, GlobalArgs, InfoArgs, InspectArgs, SystemPruneArgs, VersionArgs,
};
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

/// How `events` prints each event.
enum EventFormat {
    /// Docker's line: `TIME TYPE ACTION ACTOR (k=v, …)`.
    Line,
    /// `{{json .}}` (and `json`): Docker's message JSON with its field order, which a
    /// template's `json` function (sorted keys) would not keep.
    Json,
    Template(Template),
}

impl EventFormat {
    fn parse(format: Option<&str>) -> Result<EventFormat> {
        let Some(format) = format.filter(|f| !f.is_empty()) else {
            return Ok(EventFormat::Line);
        };
        let compact: String = format.chars().filter(|c| !c.is_whitespace()).collect();
        if format == "json" || compact == "{{json.}}" {
            return Ok(EventFormat::Json);
        }
        let template = Template::parse(format).map_err(|e| Failure {
            code: 64,
            message: format!("Error parsing format: {e}"),
        })?;
        Ok(EventFormat::Template(template))
    }

    fn write(&self, out: &mut impl Write, event: &Event) -> Result<()> {
        match self {
            EventFormat::Line => {
                let time = chrono::DateTime::from_timestamp_nanos(event.time_nano)
                    .with_timezone(&chrono::Local)
                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                write!(
                    out,
                    "{time} {} {} {}",
                    event.kind, event.action, event.actor
                )?;
                if !event.attributes.is_empty() {
                    let attributes: Vec<String> = event
                        .attributes
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    write!(out, " ({})", attributes.join(", "))?;
                }
                writeln!(out)?;
            }
            EventFormat::Json => writeln!(out, "{}", event.to_json())?,
            // An event without the field a template names (a volume's `.Actor.Attributes.image`)
            // is reported and skipped; the stream goes on.
            EventFormat::Template(t) => match t.render(&event.to_template_value()) {
                Ok(line) => writeln!(out, "{line}")?,
                Err(err) => eprintln!("Error: {err}"),
            },
        }
        Ok(())
    }
}

/// How often a following `events` looks for new rows.
const EVENTS_POLL: Duration = Duration::from_millis(100);

/// `events`: the backlog since `--since` (default: nothing old), then — unless `--until` has
/// passed — new events as they are recorded, until `--until`, SIGINT/SIGTERM, or the reader of
/// stdout going away.
pub fn events(engine: &Engine, args: EventsArgs) -> Result<ExitCode> {
    let filter = EventFilter::parse(&args.filter)?;
    let since = args.since.as_deref().map(parse_time).transpose()?;
    let until = args.until.as_deref().map(parse_time).transpose()?;
    let format = EventFormat::parse(args.format.as_deref())?;
    let now = || chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let follower = match until {
        Some(u) if u <= now() => None,
        _ => Some(Follower::new()?),
    };
    let mut last = match since {
        Some(_) => 0,
        None => engine.last_event_id()?,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut seen_version = None;
    loop {
        let finished = until.is_some_and(|u| now() > u);
        let version = engine.data_version()?;
        if seen_version != Some(version) || finished {
            seen_version = Some(version);
            for event in engine.events_after(last, since, until)? {
                last = event.id;
                if filter.matches(&event) {
                    format.write(&mut out, &event)?;
                }
            }
            out.flush()?;
        }
        let Some(follower) = &follower else { break };
        if finished {
            break;
        }
        match follower.wait(std::io::stdout().as_fd(), EVENTS_POLL) {
            Wake::Tick => {}
            Wake::Interrupted | Wake::OutputClosed => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Docker's confirmation for `system prune` (on stdout, as its CLI prints it).
fn prune_warning(args: &SystemPruneArgs) -> String {
    let mut warnings = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if args.volumes {
        warnings.push("all anonymous volumes not used by at least one container");
    }
    warnings.push(if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    warnings.push(if args.all {
        "all build cache"
    } else {
        "unused build cache"
    });
    let mut text = String::from("WARNING! This will remove:");
    for w in warnings {
        text.push_str(&format!("\n  - {w}"));
    }
    text.push('\n');
    if !args.filter.is_empty() {
        let mut filters = args.filter.clone();
        filters.sort();
        text.push_str("\n  Items to be pruned will be filtered with:");
        for f in filters {
            text.push_str(&format!("\n  - {f}"));
        }
        text.push('\n');
    }
    text.push_str("\nAre you sure you want to continue? [y/N] ");
    text
}

/// The `--filter` flags of a prune verb as moby reads them: the `accepted` keys of `label`,
/// `label!` and `until`, at most one `until`.
pub(crate) fn prune_filter(raw: &[String], accepted: &[&str]) -> Result<PruneFilter> {
    let mut filter = PruneFilter::default();
    for f in raw {
        let Some((key, value)) = f.split_once('=') else {
            bail!("bad format of filter (expected name=value): {f}");
        };
        if !accepted.contains(&key) {
            bail!("invalid filter '{key}'");
        }
        match key {
            "label" => filter.labels.push(parse_label(value)),
            "label!" => filter.labels_not.push(parse_label(value)),
            _ if filter.until.is_some() => bail!("more than one until filter specified"),
            _ => {
                let until = parse_time(value).map_err(|_| {
                    anyhow::anyhow!("failed to parse value as time or duration: {value:?}")
                })?;
                filter.until = Some(until);
            }
        }
    }
    Ok(filter)
}

/// `--filter` of `system prune`: `label=K[=V]` and `until=TIME`.
fn prune_filters(args: &SystemPruneArgs) -> Result<SystemPrune> {
    let opts = SystemPrune {
        all: args.all,
        volumes: args.volumes,
        filter: prune_filter(&args.filter, &["label", "until"])?,
    };
    if args.volumes && opts.filter.until.is_some() {
        bail!("The \"until\" filter is not supported with \"--volumes\"");
    }
    Ok(opts)
}

/// `system prune`: Docker's prompt, then each kind's prune and its section of the report.
pub fn prune(engine: &Engine, args: SystemPruneArgs) -> Result<ExitCode> {
    let opts = prune_filters(&args)?;
    if !args.force {
        let mut out = std::io::stdout().lock();
        out.write_all(prune_warning(&args).as_bytes())?;
        out.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        // Anything but y (including no answer at all) cancels, silently and successfully.
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let report = engine.prune_system(&opts)?;
    let mut out = std::io::stdout().lock();
    let mut section = |title: &str, lines: Vec<String>| -> std::io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        writeln!(out, "{title}:")?;
        for line in lines {
            writeln!(out, "{line}")?;
        }
        writeln!(out)
    };
    section("Deleted Containers", report.containers)?;
    section("Deleted Networks", report.networks)?;
    section("Deleted Volumes", report.volumes)?;
    section(
        "Deleted Images",
        report
            .images
            .iter()
            .map(|r| match r {
                RemovedImage::Untagged(name) => format!("untagged: {name}"),
                RemovedImage::Deleted(id) => format!("deleted: {id}"),
            })
            .collect(),
    )?;
    section("Deleted build cache objects", report.build_cache)?;
    writeln!(
        out,
        "Total reclaimed space: {}",
        human_size(report.reclaimed)
    )?;
    Ok(ExitCode::SUCCESS)
}
