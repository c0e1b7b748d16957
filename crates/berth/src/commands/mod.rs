//! One module per group of verbs; each command is a thin wrapper around an engine operation
//! plus the printing Docker users expect.

mod build;
mod container;
mod image;
mod network;
mod registry;
mod system;
mod update;
mod volume;

use std::process::ExitCode;

use anyhow::Result;
use berth_engine::Engine;

use crate::cli::{
    BuilderCommand, Cli, Command, ContainerCommand, GlobalArgs, ImageCommand, NetworkCommand,
    SystemCommand,
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

/// Runs `op` on every name the way the Docker CLI runs its multi-argument commands: a
/// failure is printed and the rest still run; the exit status is 1 if any failed.
pub(crate) fn each_reported<E: std::fmt::Display>(
    names: &[String],
    mut op: impl FnMut(&str) -> std::result::Result<(), E>,
) -> Result<ExitCode> {
    let mut failed = false;
    for name in names {
        if let Err(err) = op(name) {
            eprintln!("Error response from daemon: {err}");
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn open(global: &GlobalArgs) -> Result<Engine> {
    Ok(Engine::open(&global.root, &global.runroot)?)
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
        Command::Inspect(a) => container::inspect_any(&open(g)?, a),
        Command::Version(a) => system::version(g, a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => system::info(&open(g)?, a),
        Command::System(SystemCommand::Df(a)) => system::df(&open(g)?, a),
        Command::System(SystemCommand::Events(a)) | Command::Events(a) => {
            system::events(&open(g)?, a)
        }
        Command::System(SystemCommand::Prune(a)) => system::prune(&open(g)?, a),
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::build(&open(g)?, a),
        Command::Builder(BuilderCommand::Build(a)) => build::build(&open(g)?, *a),
        Command::Builder(BuilderCommand::Prune(a)) => build::prune(&open(g)?, a),
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => registry::pull(&open(g)?, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => registry::push(&open(g)?, a),
        Command::Login(a) => registry::login(&open(g)?, a),
        Command::Logout(a) => registry::logout(&open(g)?, a),
        Command::Search(a) => registry::search(&open(g)?, a),
        Command::Update(a) | Command::Container(ContainerCommand::Update(a)) => {
            update::update(&open(g)?, a)
        }
        Command::Network(NetworkCommand::Create(a)) => network::create(&open(g)?, a),
        Command::Network(NetworkCommand::Ls(a)) => network::ls(&open(g)?, a),
        Command::Network(NetworkCommand::Inspect(a)) => network::inspect(&open(g)?, a),
        Command::Network(NetworkCommand::Rm(a)) => network::rm(&open(g)?, a),
        Command::Network(NetworkCommand::Prune(a)) => network::prune(&open(g)?, a),
        Command::Network(NetworkCommand::Connect(a)) => network::connect(&open(g)?, a),
        Command::Network(NetworkCommand::Disconnect(a)) => network::disconnect(&open(g)?, a),
        Command::System(SystemCommand::Reset(a)) => network::reset(open(g)?, g, a),
        Command::DnsServer(a) => network::dns_server(g, a),
        Command::Volume(c) => volume::dispatch(&open(g)?, c),
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            container::attach(&open(g)?, a)
        }
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            container::commit(&open(g)?, a)
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => container::cp(&open(g)?, a),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            container::create(&open(g)?, a)
        }
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => {
            container::diff(&open(g)?, a)
        }
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => {
            container::exec(&open(g)?, a)
        }
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            container::export(&open(g)?, a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            container::kill(&open(g)?, a)
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            container::logs(&open(g)?, a)
        }
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            container::pause(&open(g)?, a)
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            container::port(&open(g)?, a)
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => container::ps(&open(g)?, a),
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            container::rename(&open(g)?, a)
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            container::restart(&open(g)?, a)
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => container::rm(&open(g)?, a),
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => {
            container::run(&open(g)?, a)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            container::start(&open(g)?, a)
        }
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            container::stats(&open(g)?, a)
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            container::stop(&open(g)?, a)
        }
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => {
            container::top(&open(g)?, a)
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            container::unpause(&open(g)?, a)
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            container::wait(&open(g)?, a)
        }
        Command::Container(ContainerCommand::Inspect(a)) => container::inspect(&open(g)?, a),
        Command::Container(ContainerCommand::Prune(a)) => container::prune(&open(g)?, a),
        Command::Monitor(a) => container::monitor(g, a),
    }
}
