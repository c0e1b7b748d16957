//! Flags of `update`, as Docker spells them.

use crate::output::units::parse_ram;

/// `berth update` / `berth container update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short, long, value_parser = bytes)]
    pub memory: Option<i64>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long, allow_hyphen_values = true, value_parser = swap_bytes)]
    pub memory_swap: Option<i64>,
    /// Memory soft limit
    #[arg(long, value_parser = bytes)]
    pub memory_reservation: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_parser = nano_cpus)]
    pub cpus: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, value_parser = clap::value_parser!(i64).range(0..))]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long)]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// CONTAINER [CONTAINER...]
    #[arg(required = true)]
    pub containers: Vec<String>,
}

impl UpdateArgs {
    /// Whether any flag was given (Docker refuses an update that changes nothing).
    pub fn has_flags(&self) -> bool {
        self.memory.is_some()
            || self.memory_swap.is_some()
            || self.memory_reservation.is_some()
            || self.cpus.is_some()
            || self.cpu_shares.is_some()
            || self.cpu_period.is_some()
            || self.cpu_quota.is_some()
            || self.pids_limit.is_some()
            || self.restart.is_some()
    }
}

fn bytes(text: &str) -> Result<i64, String> {
    parse_ram(text).map_err(|e| e.to_string())
}

/// Like [`bytes`], plus `-1` for unlimited swap.
fn swap_bytes(text: &str) -> Result<i64, String> {
    if text == "-1" {
        return Ok(-1);
    }
    bytes(text)
}

/// `--cpus 1.5` in billionths of a CPU, as Docker's API takes it.
fn nano_cpus(text: &str) -> Result<i64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|c| c.is_finite())
        .map(|c| (c * 1e9).round() as i64)
        .ok_or_else(|| format!("failed to parse {text} as a rational number"))
}
