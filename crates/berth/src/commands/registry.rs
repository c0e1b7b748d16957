//! `pull`, `push`, `login`, `logout`, `search`: thin wrappers over the engine's registry
//! operations, printing Docker's lines (or per-layer bars on a terminal).

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Result;
use berth_engine::registry::{LayerStatus, PullOptions, PushOptions, TransferEvent};
use berth_engine::Engine;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::registry::{LoginArgs, LogoutArgs, PullArgs, PushArgs, SearchArgs};
use crate::output::Listing;

/// Prints an error the way the Docker CLI prints daemon errors; exit status 1.
fn daemon_error(err: impl std::fmt::Display) -> ExitCode {
    eprintln!("Error response from daemon: {err}");
    ExitCode::from(1)
}

/// Renders transfer events: bars on a terminal, Docker's plain lines otherwise, nothing with -q.
struct Display {
    quiet: bool,
    bars: Option<(MultiProgress, Mutex<HashMap<String, ProgressBar>>)>,
}

impl Display {
    fn new(quiet: bool) -> Display {
        let bars = (!quiet && std::io::stdout().is_terminal()).then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                Mutex::new(HashMap::new()),
            )
        });
        Display { quiet, bars }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => println!("{text}"),
        }
    }

    fn bar(&self, id: &str) -> Option<ProgressBar> {
        let (multi, bars) = self.bars.as_ref()?;
        let mut bars = bars.lock().expect("lock");
        Some(
            bars.entry(id.to_string())
                .or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: {msg:<18} {wide_bar} {bytes}/{total_bytes}",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(id.to_string());
                    bar
                })
                .clone(),
        )
    }

    fn event(&self, event: &TransferEvent) {
        if self.quiet {
            return;
        }
        match event {
            TransferEvent::Pulling {
                tag_or_digest,
                repository,
            } => self.line(&format!("{tag_or_digest}: Pulling from {repository}")),
            TransferEvent::PushRefersTo { repository } => {
                self.line(&format!("The push refers to repository [{repository}]"))
            }
            TransferEvent::Pushed { tag, digest, size } => {
                self.line(&format!("{tag}: digest: {digest} size: {size}"))
            }
            TransferEvent::Layer { id, status } => match self.bar(id) {
                Some(bar) => {
                    let done = matches!(
                        status,
                        LayerStatus::AlreadyExists
                            | LayerStatus::PullComplete
                            | LayerStatus::Pushed
                            | LayerStatus::LayerAlreadyExists
                            | LayerStatus::MountedFrom(_)
                    );
                    if done {
                        bar.set_style(
                            ProgressStyle::with_template("{prefix}: {msg}")
                                .expect("valid template"),
                        );
                        bar.finish_with_message(status.to_string());
                    } else {
                        bar.set_message(status.to_string());
                    }
                }
                // Docker's plain output shows state changes, not in-progress states.
                None if matches!(
                    status,
                    LayerStatus::Extracting | LayerStatus::Downloading | LayerStatus::Pushing
                ) => {}
                None => println!("{id}: {status}"),
            },
            TransferEvent::Progress {
                id,
                status,
                current,
                total,
            } => {
                if let Some(bar) = self.bar(id) {
                    bar.set_length(*total);
                    bar.set_position(*current);
                    bar.set_message(status.to_string());
                }
            }
        }
    }
}

pub fn pull(engine: &Engine, args: PullArgs) -> Result<ExitCode> {
    let display = Display::new(args.quiet);
    let name_only =
        berth_image::reference::Reference::parse(&args.name).is_ok_and(|r| r.is_name_only());
    if name_only && !args.all_tags {
        display.line("Using default tag: latest");
    }
    let options = PullOptions {
        platform: args.platform.clone(),
        all_tags: args.all_tags,
    };
    let reports = match engine.pull(&args.name, &options, &|e| display.event(e)) {
        Ok(r) => r,
        Err(err) => return Ok(daemon_error(err)),
    };
    if args.all_tags {
        let Some(first) = reports.first() else {
            return Ok(ExitCode::SUCCESS);
        };
        let repo = first.reference.repository();
        let updated = reports.iter().any(|r| r.updated);
        display.line(&format!(
            "Status: {} for {}",
            if updated {
                "Downloaded newer image"
            } else {
                "Image is up to date"
            },
            repo.familiar_string()
        ));
        println!("{}", repo.name());
        return Ok(ExitCode::SUCCESS);
    }
    for report in &reports {
        display.line(&format!("Digest: {}", report.digest));
        display.line(&format!(
            "Status: {} for {}",
            if report.updated {
                "Downloaded newer image"
            } else {
                "Image is up to date"
            },
            report.reference.familiar_string()
        ));
        println!("{}", report.reference);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn push(engine: &Engine, args: PushArgs) -> Result<ExitCode> {
    let display = Display::new(args.quiet);
    let name_only =
        berth_image::reference::Reference::parse(&args.name).is_ok_and(|r| r.is_name_only());
    if name_only && !args.all_tags {
        display.line("Using default tag: latest");
    }
    let options = PushOptions {
        all_tags: args.all_tags,
    };
    match engine.push(&args.name, &options, &|e| display.event(e)) {
        Ok(reports) => {
            if args.quiet {
                for report in reports {
                    println!("{}", report.reference.familiar_string());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Ok(daemon_error(err)),
    }
}

/// Reads one line from the terminal, without echo for secrets.
fn prompt(label: &str, secret: bool) -> Result<String> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{label}")?;
    stderr.flush()?;
    let stdin = std::io::stdin();
    let saved = if secret {
        rustix::termios::tcgetattr(&stdin).ok()
    } else {
        None
    };
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, saved);
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn login(engine: &Engine, args: LoginArgs) -> Result<ExitCode> {
    if args.password.is_some() && args.password_stdin {
        anyhow::bail!("--password and --password-stdin are mutually exclusive");
    }
    let mut password = args.password.clone();
    if args.password_stdin {
        if args.username.is_none() {
            anyhow::bail!("Must provide --username with --password-stdin");
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        password = Some(text.trim_end_matches(['\r', '\n']).to_string());
    } else if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let interactive = std::io::stdin().is_terminal();
    let username = match args.username.clone() {
        Some(u) => u,
        None if interactive => prompt("Username: ", false)?,
        None => anyhow::bail!("Cannot perform an interactive login from a non TTY device"),
    };
    if username.is_empty() {
        anyhow::bail!("Username: username is required");
    }
    let password = match password {
        Some(p) => p,
        None if interactive => prompt("Password: ", true)?,
        None => anyhow::bail!("Cannot perform an interactive login from a non TTY device"),
    };
    if password.is_empty() {
        anyhow::bail!("Password: password is required");
    }
    match engine.login(args.server.as_deref(), &username, &password) {
        Ok(_) => {
            let (path, helper) = engine.credentials_location();
            if !helper {
                eprintln!(
                    "WARNING! Your password will be stored unencrypted in {}.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/engine/reference/commandline/login/#credentials-store\n",
                    path.display()
                );
            }
            println!("Login Succeeded");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Ok(daemon_error(err)),
    }
}

pub fn logout(engine: &Engine, args: LogoutArgs) -> Result<ExitCode> {
    let (key, found) = engine.logout(args.server.as_deref())?;
    let shown = key.trim_start_matches("https://").trim_end_matches('/');
    let shown = if shown == "index.docker.io/v1" {
        key.as_str()
    } else {
        shown
    };
    if found {
        println!("Removing login credentials for {shown}");
    } else {
        println!("Not logged in to {shown}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn search(engine: &Engine, args: SearchArgs) -> Result<ExitCode> {
    let mut min_stars = 0u64;
    let mut official = None;
    for filter in &args.filter {
        match filter.split_once('=') {
            Some(("stars", n)) => {
                min_stars = n
                    .parse()
                    .map_err(|_| anyhow::anyhow!("invalid filter 'stars={n}'"))?
            }
            Some(("is-official", v)) => official = Some(v == "true"),
            Some(("is-automated", _)) => {}
            _ => anyhow::bail!("invalid filter '{filter}'"),
        }
    }
    let results = match engine.search(&args.term, args.limit) {
        Ok(r) => r,
        Err(err) => return Ok(daemon_error(err)),
    };
    let rows: Vec<serde_json::Value> = results
        .iter()
        .filter(|r| r.star_count >= min_stars && official.is_none_or(|o| o == r.is_official))
        .map(|r| {
            let mut description = r.description.replace('\n', " ");
            if !args.no_trunc && description.chars().count() > 45 {
                description = description.chars().take(44).collect::<String>() + "…";
            }
            json!({
                "Name": r.name,
                "Description": description,
                "StarCount": r.star_count.to_string(),
                "IsOfficial": if r.is_official { "[OK]" } else { "" },
                "IsAutomated": if r.is_automated { "[OK]" } else { "" },
            })
        })
        .collect();
    let listing = Listing::new(
        args.format.as_deref(),
        vec![
            ("NAME", "Name"),
            ("DESCRIPTION", "Description"),
            ("STARS", "StarCount"),
            ("OFFICIAL", "IsOfficial"),
        ],
        |f| match f {
            "Name" => Some("NAME"),
            "Description" => Some("DESCRIPTION"),
            "StarCount" => Some("STARS"),
            "IsOfficial" => Some("OFFICIAL"),
            "IsAutomated" => Some("AUTOMATED"),
            _ => None,
        },
    )?;
    listing.print(&rows)?;
    Ok(ExitCode::SUCCESS)
}
