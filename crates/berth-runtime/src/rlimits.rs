//! Resource limits (`process.rlimits`).
//!
//! berth never raises a limit above the current hard limit: that needs `CAP_SYS_RESOURCE`,
//! which the engine may not have (and Docker's `--ulimit` above the daemon's own hard limit
//! fails the same way). Requests above it are capped, soft ≤ hard is kept.

use std::io;

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};
use rustix::process::{Resource, Rlimit};

/// Errors while setting resource limits.
#[derive(Debug, thiserror::Error)]
#[error("failed to set {name} to soft {soft} / hard {hard}")]
pub struct RlimitError {
    name: String,
    soft: u64,
    hard: u64,
    #[source]
    source: io::Error,
}

/// One limit to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RlimitPlan {
    pub(crate) typ: PosixRlimitType,
    pub(crate) soft: u64,
    pub(crate) hard: u64,
}

impl RlimitPlan {
    pub(crate) fn from_spec(rlimit: &PosixRlimit) -> Self {
        RlimitPlan {
            typ: rlimit.typ(),
            soft: rlimit.soft(),
            hard: rlimit.hard(),
        }
    }
}

/// Sets every limit, capped at the current hard limit.
pub(crate) fn apply(limits: &[RlimitPlan]) -> Result<(), RlimitError> {
    for limit in limits {
        let resource = resource(limit.typ);
        let current_hard = rustix::process::getrlimit(resource).maximum;
        let (soft, hard) = capped(limit.soft, limit.hard, current_hard);
        let new = Rlimit {
            current: to_rlimit(soft),
            maximum: to_rlimit(hard),
        };
        rustix::process::setrlimit(resource, new).map_err(|e| RlimitError {
            name: limit.typ.to_string(),
            soft,
            hard,
            source: e.into(),
        })?;
    }
    Ok(())
}

/// `(soft, hard)` capped at `current_hard` (`None` = unlimited), soft never above hard.
pub(crate) fn capped(soft: u64, hard: u64, current_hard: Option<u64>) -> (u64, u64) {
    let hard = current_hard.map_or(hard, |max| hard.min(max));
    (soft.min(hard), hard)
}

/// `RLIM_INFINITY` (all ones) is `None` for rustix.
fn to_rlimit(value: u64) -> Option<u64> {
    (value != u64::MAX).then_some(value)
}

fn resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::Cpu,
        PosixRlimitType::RlimitFsize => Resource::Fsize,
        PosixRlimitType::RlimitData => Resource::Data,
        PosixRlimitType::RlimitStack => Resource::Stack,
        PosixRlimitType::RlimitCore => Resource::Core,
        PosixRlimitType::RlimitRss => Resource::Rss,
        PosixRlimitType::RlimitNproc => Resource::Nproc,
        PosixRlimitType::RlimitNofile => Resource::Nofile,
        PosixRlimitType::RlimitMemlock => Resource::Memlock,
        PosixRlimitType::RlimitAs => Resource::As,
        PosixRlimitType::RlimitLocks => Resource::Locks,
        PosixRlimitType::RlimitSigpending => Resource::Sigpending,
        PosixRlimitType::RlimitMsgqueue => Resource::Msgqueue,
        PosixRlimitType::RlimitNice => Resource::Nice,
        PosixRlimitType::RlimitRtprio => Resource::Rtprio,
        PosixRlimitType::RlimitRttime => Resource::Rttime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_above_the_hard_limit() {
        assert_eq!(capped(1_048_576, 1_048_576, Some(20_000)), (20_000, 20_000));
        assert_eq!(capped(1024, 4096, Some(20_000)), (1024, 4096));
        assert_eq!(capped(u64::MAX, u64::MAX, None), (u64::MAX, u64::MAX));
        assert_eq!(capped(500, 100, None), (100, 100));
    }
}
