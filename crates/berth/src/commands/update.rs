//! `update`: new resource limits and restart policy for containers, Docker's way: each name
//! as given on success, `Error response from daemon: …` per failure, exit 1 if any failed.

use std::process::ExitCode;

use anyhow::{bail, Result};
use berth_engine::container::{Resources, RestartPolicy, UpdateOptions};
use berth_engine::{Engine, EngineError};

use super::container::each;
use super::Failure;
use crate::cli::UpdateArgs;

pub fn update(engine: &Engine, args: UpdateArgs) -> Result<ExitCode> {
    if !args.has_flags() {
        bail!("you must provide one or more flags when using this command");
    }
    let restart_policy = args
        .restart
        .as_deref()
        .map(RestartPolicy::parse)
        .transpose()
        .map_err(|message| Failure {
            code: crate::EXIT_ENGINE_ERROR,
            message,
        })?;
    let update = UpdateOptions {
        resources: Resources {
            memory: args.memory.unwrap_or(0),
            memory_swap: args.memory_swap.unwrap_or(0),
            memory_reservation: args.memory_reservation.unwrap_or(0),
            nano_cpus: args.cpus.unwrap_or(0),
            cpu_shares: args.cpu_shares.unwrap_or(0),
            cpu_period: args.cpu_period.unwrap_or(0),
            cpu_quota: args.cpu_quota.unwrap_or(0),
            pids_limit: args.pids_limit,
        },
        restart_policy,
    };
    each(&args.containers, |name| -> Result<(), EngineError> {
        engine.update_container(name, &update).map(|_| ())
    })
}
