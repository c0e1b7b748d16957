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
    BuilderCommand, Cli, Command, ContainerCommand, ContainerVerb, GlobalArgs, ImageCommand,
    NetworkCommand, SystemCommand,
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
        Command::ContainerVerb(verb) | Command::Container(ContainerCommand::Verb(verb)) => {
            container_verb(&open(g)?, *verb)
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => container::ps(&open(g)?, a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => container::rm(&open(g)?, a),
        Command::Container(ContainerCommand::Inspect(a)) => container::inspect(&open(g)?, a),
        Command::Container(ContainerCommand::Prune(a)) => container::prune(&open(g)?, a),
        Command::Monitor(a) => container::monitor(g, a),
    }
}

/// The verbs `berth VERB` and `berth container VERB` share.
fn container_verb(engine: &Engine, verb: ContainerVerb) -> Result<ExitCode> {
    match verb {
        ContainerVerb::Attach(a) => container::attach(engine, a),
        ContainerVerb::Commit(a) => container::commit(engine, a),
        ContainerVerb::Cp(a) => container::cp(engine, a),
        ContainerVerb::Create(a) => container::create(engine, a),
        ContainerVerb::Diff(a) => container::diff(engine, a),
        ContainerVerb::Exec(a) => container::exec(engine, a),
        ContainerVerb::Export(a) => container::export(engine, a),
        ContainerVerb::Kill(a) => container::kill(engine, a),
        ContainerVerb::Logs(a) => container::logs(engine, a),
        ContainerVerb::Pause(a) => container::pause(engine, a),
        ContainerVerb::Port(a) => container::port(engine, a),
        ContainerVerb::Rename(a) => container::rename(engine, a),
        ContainerVerb::Restart(a) => container::restart(engine, a),
        ContainerVerb::Run(a) => container::run(engine, a),
        ContainerVerb::Start(a) => container::start(engine, a),
        ContainerVerb::Stats(a) => container::stats(engine, a),
        ContainerVerb::Stop(a) => container::stop(engine, a),
        ContainerVerb::Top(a) => container::top(engine, a),
        ContainerVerb::Unpause(a) => container::unpause(engine, a),
        ContainerVerb::Update(a) => update::update(engine, a),
        ContainerVerb::Wait(a) => container::wait(engine, a),
    }
}
