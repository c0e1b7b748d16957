//! One module per group of verbs; each command is a thin wrapper around an engine operation
//! plus the printing Docker users expect.

mod image;
mod registry;
mod system;

use std::process::ExitCode;

use anyhow::Result;
use berth_engine::Engine;

use crate::cli::{
    BuilderCommand, Cli, Command, ContainerCommand, GlobalArgs, ImageCommand, NetworkCommand,
    SystemCommand, VolumeCommand,
};

/// An error that carries its own exit status (e.g. 125 for engine errors of `run`).
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

fn open(global: &GlobalArgs) -> Result<Engine> {
    Ok(Engine::open(&global.root, &global.runroot)?)
}

fn not_implemented(name: &str) -> Result<ExitCode> {
    Err(Failure {
        code: crate::EXIT_ENGINE_ERROR,
        message: format!("'{name}' is not implemented yet"),
    }
    .into())
}

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => image::images(&open(g)?, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => image::tag(&open(g)?, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => image::rmi(&open(g)?, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            image::history(&open(g)?, a)
        }
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => image::import(&open(g)?, a),
        Command::Image(ImageCommand::Inspect(a)) => image::inspect(&open(g)?, a),
        Command::Image(ImageCommand::Prune(a)) => image::prune(&open(g)?, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => image::save(&open(g)?, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => image::load(&open(g)?, a),
        Command::Inspect(a) => system::inspect(&open(g)?, a),
        Command::Version(a) => system::version(g, a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => system::info(&open(g)?, a),
        Command::System(SystemCommand::Df(a)) => system::df(&open(g)?, a),
        Command::System(SystemCommand::Events(_)) | Command::Events(_) => not_implemented("events"),
        Command::System(SystemCommand::Prune(_)) => not_implemented("system prune"),
        Command::Build(_) | Command::Image(ImageCommand::Build(_)) => not_implemented("build"),
        Command::Builder(BuilderCommand::Build(_)) => not_implemented("builder build"),
        Command::Builder(BuilderCommand::Prune(_)) => not_implemented("builder prune"),
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => registry::pull(&open(g)?, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => registry::push(&open(g)?, a),
        Command::Login(a) => registry::login(&open(g)?, a),
        Command::Logout(a) => registry::logout(&open(g)?, a),
        Command::Search(a) => registry::search(&open(g)?, a),
        Command::Container(c) => not_implemented(&format!("container {}", container_verb(&c))),
        Command::Network(c) => not_implemented(&format!("network {}", network_verb(&c))),
        Command::Volume(c) => not_implemented(&format!("volume {}", volume_verb(&c))),
        Command::Attach(_) => not_implemented("attach"),
        Command::Commit(_) => not_implemented("commit"),
        Command::Cp(_) => not_implemented("cp"),
        Command::Create(_) => not_implemented("create"),
        Command::Diff(_) => not_implemented("diff"),
        Command::Exec(_) => not_implemented("exec"),
        Command::Export(_) => not_implemented("export"),
        Command::Kill(_) => not_implemented("kill"),
        Command::Logs(_) => not_implemented("logs"),
        Command::Pause(_) => not_implemented("pause"),
        Command::Port(_) => not_implemented("port"),
        Command::Ps(_) => not_implemented("ps"),
        Command::Rename(_) => not_implemented("rename"),
        Command::Restart(_) => not_implemented("restart"),
        Command::Rm(_) => not_implemented("rm"),
        Command::Run(_) => not_implemented("run"),
        Command::Start(_) => not_implemented("start"),
        Command::Stats(_) => not_implemented("stats"),
        Command::Stop(_) => not_implemented("stop"),
        Command::Top(_) => not_implemented("top"),
        Command::Unpause(_) => not_implemented("unpause"),
        Command::Update(_) => not_implemented("update"),
        Command::Wait(_) => not_implemented("wait"),
    }
}

fn container_verb(c: &ContainerCommand) -> String {
    format!("{c:?}")
        .split('(')
        .next()
        .unwrap_or("")
        .to_lowercase()
}

fn network_verb(c: &NetworkCommand) -> String {
    format!("{c:?}")
        .split('(')
        .next()
        .unwrap_or("")
        .to_lowercase()
}

fn volume_verb(c: &VolumeCommand) -> String {
    format!("{c:?}")
        .split('(')
        .next()
        .unwrap_or("")
        .to_lowercase()
}
