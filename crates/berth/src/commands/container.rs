//! The container commands: thin wrappers around the engine's container operations plus the
//! printing (and exit statuses) Docker users expect.

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_engine::container::attach::{self, AttachEnd, AttachOptions};
use berth_engine::container::commit::CommitOptions;
use berth_engine::container::exec::{ExecOptions, ExecOutcome};
use berth_engine::container::list::ContainerFilter;
use berth_engine::container::logs::LogOptions;
use berth_engine::container::start::StartOutcome;
use berth_engine::container::{
    Container, ContainerState, CreateOptions, HostConfig, PortBinding, PullPolicy, Resources,
    RestartPolicy, Ulimit,
};
use berth_engine::monitor::{self, MonitorArgs as EngineMonitorArgs};
use berth_engine::{Engine, EngineError};
use serde_json::{json, Value};

use super::Failure;
use crate::cli::{
    AttachArgs, CommitArgs, ContainerInspectArgs, ContainerPruneArgs, ContainersArgs, CpArgs,
    CreateArgs, CreateFlags, DiffArgs, EnvArgs, ExecArgs, ExportArgs, GlobalArgs, InspectArgs,
    KillArgs, LogsArgs, MonitorArgs, PortArgs, PsArgs, RenameArgs, RmArgs, RunArgs, StartArgs,
    StatsArgs, StopArgs, TopArgs,
};
use crate::output::units::{human_duration, human_size, parse_ram};
use crate::output::Listing;

/// Exit status of `run`/`create` when berth itself fails.
const ENGINE_ERROR: u8 = crate::EXIT_ENGINE_ERROR;

/// An engine error as Docker's CLI reports it, with the exit status `code`.
fn daemon_error(err: EngineError, code: u8) -> anyhow::Error {
    Failure {
        code,
        message: err.to_string(),
    }
    .into()
}

fn fail(code: i32, message: String) -> anyhow::Error {
    Failure {
        code: code.clamp(0, 255) as u8,
        message,
    }
    .into()
}

/// Runs `op` for each named container, printing Docker's per-container errors; exit 1 if any
/// failed.
pub(super) fn each(
    names: &[String],
    mut op: impl FnMut(&str) -> Result<(), EngineError>,
) -> Result<ExitCode> {
    super::each_reported(names, |name| {
        op(name)?;
        println!("{name}");
        Ok::<(), EngineError>(())
    })
}

/// `KEY=VALUE`, or `KEY` taken from our environment (dropped when unset), as Docker does.
fn expand_env(var: &str, out: &mut Vec<String>) {
    if var.contains('=') {
        out.push(var.to_string());
    } else if let Ok(value) = std::env::var(var) {
        out.push(format!("{var}={value}"));
    }
}

/// The variables `--env-file` and then `-e` set, as Docker reads them.
fn environment(args: &EnvArgs) -> Result<Vec<String>> {
    let mut env = Vec::new();
    read_env_files(&args.env_file, &mut env)?;
    for e in &args.env {
        expand_env(e, &mut env);
    }
    Ok(env)
}

fn read_env_files(files: &[std::path::PathBuf], out: &mut Vec<String>) -> Result<()> {
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("open {}: no such file or directory", file.display()))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            expand_env(line, out);
        }
    }
    Ok(())
}

fn create_options(flags: &CreateFlags, detach: bool) -> Result<CreateOptions> {
    let mut args = flags.image_and_args.clone();
    let image = args.remove(0);
    let env = environment(&flags.environment)?;
    let mut labels = BTreeMap::new();
    for l in &flags.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let mut tmpfs = BTreeMap::new();
    for t in &flags.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(path.to_string(), opts.to_string());
    }
    let restart = RestartPolicy::parse(&flags.restart).map_err(|m| fail(125, m))?;
    let memory = flags
        .memory
        .as_deref()
        .map(parse_ram)
        .transpose()?
        .unwrap_or(0);
    let memory_swap = match flags.memory_swap.as_deref() {
        None => 0,
        Some("-1") => -1,
        Some(s) => parse_ram(s)?,
    };
    let ulimits = flags
        .ulimit
        .iter()
        .map(|u| Ulimit::parse(u).map_err(|m| fail(125, m)))
        .collect::<Result<Vec<_>>>()?;
    let network = match flags.network.as_str() {
        "default" | "bridge" => "default".to_string(),
        other => other.to_string(),
    };
    let port_bindings = publish_bindings(&flags.publish)?;
    let mut expose = Vec::new();
    for spec in &flags.expose {
        let ports = berth_net::ports::parse_expose(spec).map_err(|m| fail(125, m))?;
        expose.extend(ports.iter().map(|p| p.to_string()));
    }
    // Published ports are exposed too, as Docker records them.
    expose.extend(port_bindings.keys().cloned());
    let endpoint = super::network::run_endpoint(&flags.network_alias, &flags.ip)?;
    if let Some(mac) = flags
        .mac_address
        .as_deref()
        .filter(|mac| berth_net::ipam::parse_mac(mac).is_none())
    {
        return Err(fail(125, format!("{mac} is not a valid mac address")));
    }
    let attach = !detach;
    Ok(CreateOptions {
        name: flags.name.clone(),
        image,
        cmd: args,
        entrypoint: flags.entrypoint.clone(),
        env,
        workdir: flags.workdir.clone(),
        user: flags.user.clone(),
        hostname: flags.hostname.clone(),
        mac_address: flags.mac_address.clone(),
        domainname: flags.domainname.clone(),
        tty: flags.tty,
        open_stdin: flags.interactive,
        attach,
        labels,
        stop_signal: flags.stop_signal.clone(),
        stop_timeout: flags.stop_timeout,
        pull: flags
            .pull
            .parse::<PullPolicy>()
            .map_err(|e| daemon_error(e, ENGINE_ERROR))?,
        platform: flags.platform.clone(),
        expose,
        endpoint,
        host: HostConfig {
            network_mode: network,
            port_bindings,
            publish_all_ports: flags.publish_all,
            dns: flags.dns.clone(),
            dns_search: flags.dns_search.clone(),
            dns_options: flags.dns_option.clone(),
            extra_hosts: flags.add_host.clone(),
            links: flags.link.clone(),
            restart_policy: restart,
            auto_remove: flags.rm,
            readonly_rootfs: flags.read_only,
            tmpfs,
            init: flags.init.then_some(true),
            resources: Resources {
                memory,
                memory_swap,
                nano_cpus: flags.cpus.map_or(0, |c| (c * 1e9) as i64),
                cpu_shares: flags.cpu_shares.unwrap_or(0),
                pids_limit: flags.pids_limit,
                ..Resources::default()
            },
            cap_add: flags.cap_add.clone(),
            cap_drop: flags.cap_drop.clone(),
            privileged: flags.privileged,
            security_opt: flags.security_opt.clone(),
            ulimits,
            binds: flags.volume.clone(),
            mounts: flags
                .mount
                .iter()
                .map(|m| super::volume::parse_mount_flag(m).map_err(|e| fail(125, e)))
                .collect::<Result<_>>()?,
            volumes_from: flags.volumes_from.clone(),
            sysctls: berth_engine::container::sysctl::parse(&flags.sysctl),
        },
    })
}

/// `-p` values as Docker's `PortBindings`.
fn publish_bindings(specs: &[String]) -> Result<BTreeMap<String, Vec<PortBinding>>> {
    let mut bindings: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for spec in specs {
        let requests = berth_net::ports::parse_publish(spec).map_err(|m| fail(125, m))?;
        for r in requests {
            let host_port = match r.host_ports {
                (0, _) => String::new(),
                (lo, hi) if lo == hi => lo.to_string(),
                (lo, hi) => format!("{lo}-{hi}"),
            };
            bindings
                .entry(r.container.to_string())
                .or_default()
                .push(PortBinding {
                    host_ip: r.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                    host_port,
                });
        }
    }
    Ok(bindings)
}

pub fn create(engine: &Engine, args: CreateArgs) -> Result<ExitCode> {
    let opts = create_options(&args.flags, true)?;
    let c = engine
        .create_container(&opts)
        .map_err(|e| daemon_error(e, ENGINE_ERROR))?;
    println!("{}", c.id);
    Ok(ExitCode::SUCCESS)
}

pub fn run(engine: &Engine, args: RunArgs) -> Result<ExitCode> {
    let flags = &args.flags;
    let opts = create_options(flags, args.detach)?;
    let c = engine
        .create_container(&opts)
        .map_err(|e| daemon_error(e, ENGINE_ERROR))?;
    let tty = c.config.tty;
    let interactive = c.config.open_stdin;
    match engine
        .start_loaded(c)
        .map_err(|e| daemon_error(e, ENGINE_ERROR))?
    {
        StartOutcome::Failed { code, message } => Err(fail(code, message)),
        StartOutcome::AlreadyRunning(c) => {
            println!("{}", c.id);
            Ok(ExitCode::SUCCESS)
        }
        StartOutcome::Started { container, stream } => {
            if args.detach {
                drop(stream);
                println!("{}", container.id);
                return Ok(ExitCode::SUCCESS);
            }
            let end = attach::stream(
                stream,
                AttachOptions {
                    stdin: interactive,
                    tty,
                    sig_proxy: flags.sig_proxy,
                },
            )?;
            finish_attached(engine, &container, end)
        }
    }
}

/// The exit status of a foreground session: the container's.
fn finish_attached(engine: &Engine, c: &Container, end: AttachEnd) -> Result<ExitCode> {
    let code = match end {
        AttachEnd::Exited(code) => code,
        AttachEnd::Detached => {
            eprintln!("\nread escape sequence");
            return Ok(ExitCode::SUCCESS);
        }
        AttachEnd::Lost => engine.wait_loaded(c).unwrap_or(125),
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

pub fn start(engine: &Engine, args: StartArgs) -> Result<ExitCode> {
    if args.attach || args.interactive {
        if args.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let name = &args.containers[0];
        let c = engine.container(name).map_err(|e| daemon_error(e, 1))?;
        let (tty, stdin) = (c.config.tty, args.interactive && c.config.open_stdin);
        let stream = match engine.start_loaded(c).map_err(|e| daemon_error(e, 1))? {
            StartOutcome::Failed { code, message } => return Err(fail(code, message)),
            StartOutcome::AlreadyRunning(c) => {
                engine
                    .attach_container(&c.id)
                    .map_err(|e| daemon_error(e, 1))?
                    .1
            }
            StartOutcome::Started { stream, .. } => stream,
        };
        let c = engine.container(name).map_err(|e| daemon_error(e, 1))?;
        let end = attach::stream(
            stream,
            AttachOptions {
                stdin,
                tty,
                sig_proxy: true,
            },
        )?;
        return finish_attached(engine, &c, end);
    }
    let mut failed = false;
    for name in &args.containers {
        match engine.start_container(name) {
            Ok(StartOutcome::Failed { message, .. }) => {
                eprintln!("Error response from daemon: {message}");
                failed = true;
            }
            Ok(_) => println!("{name}"),
            Err(err) => {
                eprintln!("Error response from daemon: {err}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Failure {
            code: 1,
            message: "failed to start containers".into(),
        }
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn attach(engine: &Engine, args: AttachArgs) -> Result<ExitCode> {
    let (c, stream) = engine
        .attach_container(&args.container)
        .map_err(|e| daemon_error(e, 1))?;
    let opts = AttachOptions {
        stdin: !args.no_stdin && c.config.open_stdin,
        tty: c.config.tty,
        sig_proxy: args.sig_proxy,
    };
    let end = attach::stream(stream, opts)?;
    finish_attached(engine, &c, end)
}

pub fn stop(engine: &Engine, args: StopArgs) -> Result<ExitCode> {
    each(&args.containers, |n| {
        engine
            .stop_container(n, args.time, args.signal.as_deref())
            .map(|_| ())
    })
}

pub fn restart(engine: &Engine, args: StopArgs) -> Result<ExitCode> {
    each(&args.containers, |n| {
        match engine.restart_container(n, args.time, args.signal.as_deref())? {
            StartOutcome::Failed { message, .. } => Err(EngineError::Conflict(message)),
            _ => Ok(()),
        }
    })
}

pub fn kill(engine: &Engine, args: KillArgs) -> Result<ExitCode> {
    each(&args.containers, |n| {
        engine.kill_container(n, &args.signal).map(|_| ())
    })
}

pub fn rm(engine: &Engine, args: RmArgs) -> Result<ExitCode> {
    each(&args.containers, |n| {
        engine.remove_container_with_volumes(n, args.force, args.volumes)
    })
}

pub fn pause(engine: &Engine, args: ContainersArgs) -> Result<ExitCode> {
    each(&args.containers, |n| engine.pause_container(n).map(|_| ()))
}

pub fn unpause(engine: &Engine, args: ContainersArgs) -> Result<ExitCode> {
    each(&args.containers, |n| {
        engine.unpause_container(n).map(|_| ())
    })
}

pub fn wait(engine: &Engine, args: ContainersArgs) -> Result<ExitCode> {
    super::each_reported(&args.containers, |name| {
        println!("{}", engine.wait_container(name)?);
        Ok::<(), EngineError>(())
    })
}

pub fn rename(engine: &Engine, args: RenameArgs) -> Result<ExitCode> {
    engine
        .rename_container(&args.container, &args.new_name)
        .map_err(|e| daemon_error(e, 1))?;
    Ok(ExitCode::SUCCESS)
}

fn ps_header(field: &str) -> Option<&'static str> {
    Some(match field {
        "ID" => "CONTAINER ID",
        "Image" => "IMAGE",
        "Command" => "COMMAND",
        "CreatedAt" => "CREATED AT",
        "RunningFor" => "CREATED",
        "Ports" => "PORTS",
        "State" => "STATE",
        "Status" => "STATUS",
        "Size" => "SIZE",
        "Names" => "NAMES",
        "Labels" => "LABELS",
        "Mounts" => "MOUNTS",
        "Networks" => "NETWORKS",
        "LocalVolumes" => "LOCAL VOLUMES",
        _ => return None,
    })
}

/// Docker's STATUS column.
pub fn status_text(c: &Container) -> String {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let ago = |t: i64| human_duration((now - t) / 1_000_000_000);
    match c.state {
        ContainerState::Running => format!("Up {}", ago(c.started_at)),
        ContainerState::Paused => format!("Up {} (Paused)", ago(c.started_at)),
        ContainerState::Restarting => {
            format!("Restarting ({}) {} ago", c.exit_code, ago(c.finished_at))
        }
        ContainerState::Removing => "Removal In Progress".into(),
        ContainerState::Dead => "Dead".into(),
        ContainerState::Created => "Created".into(),
        ContainerState::Exited if c.started_at == 0 && c.finished_at == 0 => "Created".into(),
        ContainerState::Exited => format!("Exited ({}) {} ago", c.exit_code, ago(c.finished_at)),
    }
}

fn command_text(c: &Container, no_trunc: bool) -> String {
    let command = c.config.args().join(" ");
    let shown = if !no_trunc && command.chars().count() > 20 {
        let cut: String = command.chars().take(19).collect();
        format!("{cut}…")
    } else {
        command
    };
    format!("\"{shown}\"")
}

fn created_at(nanos: i64) -> String {
    chrono::DateTime::from_timestamp(nanos / 1_000_000_000, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

pub fn ps(engine: &Engine, args: PsArgs) -> Result<ExitCode> {
    let filters = ContainerFilter::parse_filters(&args.filter).map_err(|e| daemon_error(e, 1))?;
    let last = if args.latest {
        Some(1)
    } else {
        args.last.filter(|n| *n >= 0).map(|n| n as usize)
    };
    let filter = ContainerFilter {
        all: args.all,
        last,
        filters,
    };
    let rows = engine
        .list_containers(&filter)
        .map_err(|e| daemon_error(e, 1))?;
    let id = |c: &Container| {
        if args.no_trunc {
            c.id.clone()
        } else {
            c.short_id().to_string()
        }
    };
    if args.quiet {
        let mut out = BufWriter::new(std::io::stdout().lock());
        for c in &rows {
            writeln!(out, "{}", id(c))?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut columns = vec![
        ("CONTAINER ID", "ID"),
        ("IMAGE", "Image"),
        ("COMMAND", "Command"),
        ("CREATED", "RunningFor"),
        ("STATUS", "Status"),
        ("PORTS", "Ports"),
        ("NAMES", "Names"),
    ];
    let wants_size = args.size || args.format.as_deref().is_some_and(|f| f.contains(".Size"));
    if args.size {
        columns.push(("SIZE", "Size"));
    }
    let listing = Listing::new(args.format.as_deref(), columns, ps_header)?;
    let values: Vec<Value> = rows
        .iter()
        .map(|c| {
            let labels: Vec<String> = c.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let size = if wants_size {
                format!(
                    "{} (virtual {})",
                    human_size(engine.container_size(c)),
                    human_size(engine.container_virtual_size(c))
                )
            } else {
                String::new()
            };
            json!({
                "Command": command_text(c, args.no_trunc),
                "CreatedAt": created_at(c.created),
                "ID": id(c),
                "Image": c.image,
                "Labels": labels.join(","),
                "LocalVolumes": "0",
                "Mounts": "",
                "Names": c.name,
                "Networks": engine.network_names(c).join(","),
                "Ports": engine.ports_summary(c),
                "RunningFor": format!("{} ago", human_duration((chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) - c.created) / 1_000_000_000)),
                "Size": size,
                "State": c.state.as_str(),
                "Status": status_text(c),
            })
        })
        .collect();
    listing.print(&values)?;
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(engine: &Engine, args: ContainerInspectArgs) -> Result<ExitCode> {
    super::image::print_inspected(&args.containers, args.format.as_deref(), |name| {
        engine
            .inspect_container(name, args.size)
            .map_err(anyhow::Error::from)
    })
}

/// `berth inspect`: containers first, then images, as Docker looks them up.
pub fn inspect_any(engine: &Engine, args: InspectArgs) -> Result<ExitCode> {
    match args.kind.as_deref() {
        Some("image") => return super::system::inspect(engine, args),
        Some("container") => {
            return super::image::print_inspected(&args.objects, args.format.as_deref(), |name| {
                engine
                    .inspect_container(name, args.size)
                    .map_err(|_| anyhow::anyhow!("No such container: {name}"))
            })
        }
        Some(other) if other != "image" => bail!("\"{other}\" is not a valid value for --type"),
        _ => {}
    }
    super::image::print_inspected(&args.objects, args.format.as_deref(), |name| {
        engine
            .inspect_container(name, args.size)
            .or_else(|_| engine.inspect_image(name))
            .map_err(|_| anyhow::anyhow!("No such object: {name}"))
    })
}

/// `--since`/`--until`: RFC 3339, a unix timestamp, or a duration before now (`10m`, `1h30m`).
pub(crate) fn parse_time(text: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_nanos_opt().unwrap_or(0));
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Ok((secs * 1e9) as i64);
    }
    let mut total: f64 = 0.0;
    let mut num = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let c = rest.chars().next().expect("non-empty");
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            rest = &rest[1..];
            continue;
        }
        let (unit, scale) = if rest.starts_with("ms") {
            ("ms", 1e-3)
        } else if rest.starts_with('h') {
            ("h", 3600.0)
        } else if rest.starts_with('m') {
            ("m", 60.0)
        } else if rest.starts_with('s') {
            ("s", 1.0)
        } else {
            bail!("invalid value for \"since\": {text}");
        };
        let n: f64 = num
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid duration: {text}"))?;
        total += n * scale;
        num.clear();
        rest = &rest[unit.len()..];
    }
    if !num.is_empty() {
        bail!("invalid duration: {text}");
    }
    Ok(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) - (total * 1e9) as i64)
}

pub fn logs(engine: &Engine, args: LogsArgs) -> Result<ExitCode> {
    let tail = match args.tail.as_str() {
        "all" | "" => None,
        n => Some(
            n.parse::<i64>()
                .map(|n| n.max(0) as usize)
                .unwrap_or(usize::MAX),
        ),
    };
    let opts = LogOptions {
        follow: args.follow,
        tail,
        since: args.since.as_deref().map(parse_time).transpose()?,
        until: args.until.as_deref().map(parse_time).transpose()?,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let mut sink = |e: &berth_engine::container::logs::LogEntry| -> std::io::Result<()> {
        let w: &mut dyn Write = if e.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        if args.timestamps {
            write!(w, "{} ", e.time)?;
        }
        w.write_all(e.log.as_bytes())?;
        if args.follow {
            w.flush()?;
        }
        Ok(())
    };
    engine
        .container_logs(&args.container, &opts, &mut sink)
        .map_err(|e| daemon_error(e, 1))?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn exec(engine: &Engine, args: ExecArgs) -> Result<ExitCode> {
    let mut parts = args.container_and_command.clone();
    let container = parts.remove(0);
    let env = environment(&args.environment)?;
    let opts = ExecOptions {
        cmd: parts,
        interactive: args.interactive,
        tty: args.tty,
        detach: args.detach,
        env,
        user: args.user,
        workdir: args.workdir,
        privileged: args.privileged,
    };
    match engine
        .exec_in_container(&container, &opts)
        .map_err(|e| daemon_error(e, 1))?
    {
        ExecOutcome::Exited(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        ExecOutcome::Detached => Ok(ExitCode::SUCCESS),
        ExecOutcome::Failed { code, message } => {
            Err(fail(code, format!("OCI runtime exec failed: {message}")))
        }
    }
}

pub fn top(engine: &Engine, args: TopArgs) -> Result<ExitCode> {
    let top = engine
        .top_container(&args.container, &args.ps_args)
        .map_err(|e| daemon_error(e, 1))?;
    let mut cells: Vec<Vec<String>> = vec![top.titles.clone()];
    cells.extend(top.processes);
    let widths: Vec<usize> = (0..top.titles.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for row in cells {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(
                    ' ',
                    widths[i] + 3 - cell.chars().count(),
                ));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn stats(engine: &Engine, args: StatsArgs) -> Result<ExitCode> {
    let containers: Vec<Container> = if args.containers.is_empty() {
        let filter = ContainerFilter {
            all: args.all,
            last: None,
            filters: Vec::new(),
        };
        engine
            .list_containers(&filter)
            .map_err(|e| daemon_error(e, 1))?
    } else {
        args.containers
            .iter()
            .map(|n| engine.container(n).map_err(|e| daemon_error(e, 1)))
            .collect::<Result<_>>()?
    };
    let listing = Listing::new(
        args.format.as_deref(),
        vec![
            ("CONTAINER ID", "ID"),
            ("NAME", "Name"),
            ("CPU %", "CPUPerc"),
            ("MEM USAGE / LIMIT", "MemUsage"),
            ("MEM %", "MemPerc"),
            ("NET I/O", "NetIO"),
            ("BLOCK I/O", "BlockIO"),
            ("PIDS", "PIDs"),
        ],
        |f| {
            Some(match f {
                "ID" | "Container" => "CONTAINER ID",
                "Name" => "NAME",
                "CPUPerc" => "CPU %",
                "MemUsage" => "MEM USAGE / LIMIT",
                "MemPerc" => "MEM %",
                "NetIO" => "NET I/O",
                "BlockIO" => "BLOCK I/O",
                "PIDs" => "PIDS",
                _ => return None,
            })
        },
    )?;
    let binary = |b: u64| -> String {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = b as f64;
        let mut u = 0;
        while v >= 1024.0 && u < UNITS.len() - 1 {
            v /= 1024.0;
            u += 1;
        }
        // go-units' BytesSize: `%.4g` then the unit.
        let digits = if v >= 1000.0 {
            0
        } else if v >= 100.0 {
            1
        } else if v >= 10.0 {
            2
        } else {
            3
        };
        let text = format!("{v:.digits$}");
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        };
        text + UNITS[u]
    };
    let samples = engine
        .container_stats(&containers)
        .map_err(|e| daemon_error(e, 1))?;
    let values: Vec<Value> = samples
        .iter()
        .map(|s| {
            let id = if args.no_trunc {
                s.id.clone()
            } else {
                s.id[..12].to_string()
            };
            let mem_perc = if s.memory_limit > 0 {
                s.memory_usage as f64 / s.memory_limit as f64 * 100.0
            } else {
                0.0
            };
            json!({
                "BlockIO": "0B / 0B",
                "CPUPerc": format!("{:.2}%", s.cpu_percent),
                "Container": id,
                "ID": id,
                "MemPerc": format!("{mem_perc:.2}%"),
                "MemUsage": format!("{} / {}", binary(s.memory_usage), binary(s.memory_limit)),
                "Name": s.name,
                "NetIO": "0B / 0B",
                "PIDs": s.pids.to_string(),
            })
        })
        .collect();
    listing.print(&values)?;
    Ok(ExitCode::SUCCESS)
}

pub fn diff(engine: &Engine, args: DiffArgs) -> Result<ExitCode> {
    let changes = engine
        .container_changes(&args.container)
        .map_err(|e| daemon_error(e, 1))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for change in changes {
        writeln!(out, "{change}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn commit(engine: &Engine, args: CommitArgs) -> Result<ExitCode> {
    let opts = CommitOptions {
        reference: args.reference,
        message: args.message,
        author: args.author,
        changes: args.change,
        pause: args.pause,
    };
    let id = engine
        .commit_container(&args.container, &opts)
        .map_err(|e| daemon_error(e, 1))?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

pub fn export(engine: &Engine, args: ExportArgs) -> Result<ExitCode> {
    match &args.output {
        Some(path) => {
            let tmp = path.with_extension("berth-partial");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("failed to create {}", tmp.display()))?;
            let result = engine.export_container(&args.container, BufWriter::new(file));
            if let Err(err) = result {
                let _ = std::fs::remove_file(&tmp);
                return Err(daemon_error(err, 1));
            }
            std::fs::rename(&tmp, path)
                .with_context(|| format!("failed to write {}", path.display()))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            engine
                .export_container(&args.container, std::io::stdout().lock())
                .map_err(|e| daemon_error(e, 1))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn cp(engine: &Engine, args: CpArgs) -> Result<ExitCode> {
    let split = |s: &str| -> Option<(String, String)> {
        if s.starts_with('/') || s.starts_with('.') || s == "-" {
            return None;
        }
        s.split_once(':')
            .map(|(c, p)| (c.to_string(), p.to_string()))
    };
    let copy = berth_engine::container::cp::CopyOptions {
        archive: args.archive,
        follow_link: args.follow_link,
    };
    match (split(&args.source), split(&args.destination)) {
        (Some((c, src)), None) if args.destination == "-" => engine
            .archive_from_container(&c, &src, args.follow_link, std::io::stdout().lock())
            .map_err(|e| daemon_error(e, 1))?,
        (None, Some((c, dst))) if args.source == "-" => engine
            .extract_to_container(std::io::stdin().lock(), &c, &dst)
            .map_err(|e| daemon_error(e, 1))?,
        (Some((c, src)), None) => engine
            .copy_from_container(&c, &src, std::path::Path::new(&args.destination), &copy)
            .map_err(|e| daemon_error(e, 1))?,
        (None, Some((c, dst))) => engine
            .copy_to_container(std::path::Path::new(&args.source), &c, &dst, &copy)
            .map_err(|e| daemon_error(e, 1))?,
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn prune(engine: &Engine, args: ContainerPruneArgs) -> Result<ExitCode> {
    if !args.force && !super::image::confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(ExitCode::SUCCESS);
    }
    let filters = ContainerFilter::parse_filters(&args.filter).map_err(|e| daemon_error(e, 1))?;
    let report = engine
        .prune_containers(&filters)
        .map_err(|e| daemon_error(e, 1))?;
    if !report.removed.is_empty() {
        println!("Deleted Containers:");
        for id in &report.removed {
            println!("{id}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(report.reclaimed));
    Ok(ExitCode::SUCCESS)
}

pub fn port(engine: &Engine, args: PortArgs) -> Result<ExitCode> {
    let c = engine
        .container(&args.container)
        .map_err(|e| daemon_error(e, 1))?;
    let mappings = engine.port_mappings(&c).map_err(|e| daemon_error(e, 1))?;
    let Some(wanted) = args.port else {
        for m in &mappings {
            println!("{} -> {}:{}", m.container, m.host_ip_text(), m.host_port);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let port: berth_net::ports::ContainerPort = wanted
        .parse()
        .map_err(|_| fail(1, format!("Invalid port: {wanted}")))?;
    let found: Vec<_> = mappings.iter().filter(|m| m.container == port).collect();
    if found.is_empty() {
        return Err(fail(
            1,
            format!("No public port '{port}' published for {}", args.container),
        ));
    }
    for m in found {
        println!("{}:{}", m.host_ip_text(), m.host_port);
    }
    Ok(ExitCode::SUCCESS)
}

/// The hidden `berth monitor` process.
pub fn monitor(global: &GlobalArgs, args: MonitorArgs) -> Result<ExitCode> {
    let code = monitor::main(EngineMonitorArgs {
        root: global.root.clone(),
        runroot: global.runroot.clone(),
        id: args.id,
        sync_fd: args.sync_fd,
        lock_fd: args.lock_fd,
    });
    Ok(ExitCode::from(code as u8))
}
