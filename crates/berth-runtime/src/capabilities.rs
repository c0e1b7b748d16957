//! Linux capabilities of the container process (`process.capabilities`), through the `caps`
//! crate.
//!
//! The sets are applied in the order the kernel accepts: the bounding set is reduced while we
//! still hold `CAP_SETPCAP`; after the uid switch (with `PR_SET_KEEPCAPS`, see
//! [`crate::user`]) effective, permitted and inheritable are set — effective first, because the
//! kernel requires effective ⊆ permitted at every `capset(2)` — and ambient last (ambient
//! capabilities must be both permitted and inheritable).

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capability, LinuxCapabilities};

/// Errors while applying capabilities.
#[derive(Debug, thiserror::Error)]
#[error("failed to {step}")]
pub struct CapabilityError {
    step: &'static str,
    #[source]
    source: caps::errors::CapsError,
}

/// The five sets, converted before the clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct CapabilityPlan {
    /// Capabilities to drop from the bounding set: every one the kernel knows and the spec
    /// does not keep.
    pub(crate) drop_bounding: Vec<caps::Capability>,
    pub(crate) effective: CapsHashSet,
    pub(crate) permitted: CapsHashSet,
    pub(crate) inheritable: CapsHashSet,
    pub(crate) ambient: CapsHashSet,
}

impl CapabilityPlan {
    /// Converts the spec's sets; `supported` is what the running kernel knows
    /// (`/proc/sys/kernel/cap_last_cap`).
    pub(crate) fn from_spec(spec: &LinuxCapabilities, supported: &CapsHashSet) -> Self {
        let convert = |set: &Option<oci_spec::runtime::Capabilities>| -> CapsHashSet {
            set.iter()
                .flatten()
                .map(|c| to_caps(*c))
                .filter(|c| supported.contains(c))
                .collect()
        };
        let bounding = convert(spec.bounding());
        let mut drop_bounding: Vec<_> = supported.difference(&bounding).copied().collect();
        drop_bounding.sort_by_key(|c| c.index());
        CapabilityPlan {
            drop_bounding,
            effective: convert(spec.effective()),
            permitted: convert(spec.permitted()),
            inheritable: convert(spec.inheritable()),
            ambient: convert(spec.ambient()),
        }
    }
}

/// The capabilities the running kernel supports.
pub(crate) fn supported() -> CapsHashSet {
    caps::runtime::procfs_all_supported(None)
        .unwrap_or_else(|_| caps::runtime::thread_all_supported())
}

/// Drops the bounding set to the spec's; needs `CAP_SETPCAP`, so it runs before the uid
/// switch.
pub(crate) fn drop_bounding(plan: &CapabilityPlan) -> Result<(), CapabilityError> {
    for cap in &plan.drop_bounding {
        caps::drop(None, CapSet::Bounding, *cap).map_err(|source| CapabilityError {
            step: "drop a capability from the bounding set",
            source,
        })?;
    }
    Ok(())
}

/// Sets the effective, permitted, inheritable and ambient sets.
pub(crate) fn apply(plan: &CapabilityPlan) -> Result<(), CapabilityError> {
    let steps = [
        (
            CapSet::Effective,
            &plan.effective,
            "set the effective capabilities",
        ),
        (
            CapSet::Permitted,
            &plan.permitted,
            "set the permitted capabilities",
        ),
        (
            CapSet::Inheritable,
            &plan.inheritable,
            "set the inheritable capabilities",
        ),
    ];
    for (set, value, step) in steps {
        caps::set(None, set, value).map_err(|source| CapabilityError { step, source })?;
    }
    if !plan.ambient.is_empty() {
        for cap in &plan.ambient {
            caps::raise(None, CapSet::Ambient, *cap).map_err(|source| CapabilityError {
                step: "raise an ambient capability",
                source,
            })?;
        }
    }
    Ok(())
}

/// The `caps` crate's name for an OCI capability.
pub(crate) fn to_caps(cap: Capability) -> caps::Capability {
    use caps::Capability as C;
    match cap {
        Capability::AuditControl => C::CAP_AUDIT_CONTROL,
        Capability::AuditRead => C::CAP_AUDIT_READ,
        Capability::AuditWrite => C::CAP_AUDIT_WRITE,
        Capability::BlockSuspend => C::CAP_BLOCK_SUSPEND,
        Capability::Bpf => C::CAP_BPF,
        Capability::CheckpointRestore => C::CAP_CHECKPOINT_RESTORE,
        Capability::Chown => C::CAP_CHOWN,
        Capability::DacOverride => C::CAP_DAC_OVERRIDE,
        Capability::DacReadSearch => C::CAP_DAC_READ_SEARCH,
        Capability::Fowner => C::CAP_FOWNER,
        Capability::Fsetid => C::CAP_FSETID,
        Capability::IpcLock => C::CAP_IPC_LOCK,
        Capability::IpcOwner => C::CAP_IPC_OWNER,
        Capability::Kill => C::CAP_KILL,
        Capability::Lease => C::CAP_LEASE,
        Capability::LinuxImmutable => C::CAP_LINUX_IMMUTABLE,
        Capability::MacAdmin => C::CAP_MAC_ADMIN,
        Capability::MacOverride => C::CAP_MAC_OVERRIDE,
        Capability::Mknod => C::CAP_MKNOD,
        Capability::NetAdmin => C::CAP_NET_ADMIN,
        Capability::NetBindService => C::CAP_NET_BIND_SERVICE,
        Capability::NetBroadcast => C::CAP_NET_BROADCAST,
        Capability::NetRaw => C::CAP_NET_RAW,
        Capability::Perfmon => C::CAP_PERFMON,
        Capability::Setgid => C::CAP_SETGID,
        Capability::Setfcap => C::CAP_SETFCAP,
        Capability::Setpcap => C::CAP_SETPCAP,
        Capability::Setuid => C::CAP_SETUID,
        Capability::SysAdmin => C::CAP_SYS_ADMIN,
        Capability::SysBoot => C::CAP_SYS_BOOT,
        Capability::SysChroot => C::CAP_SYS_CHROOT,
        Capability::SysModule => C::CAP_SYS_MODULE,
        Capability::SysNice => C::CAP_SYS_NICE,
        Capability::SysPacct => C::CAP_SYS_PACCT,
        Capability::SysPtrace => C::CAP_SYS_PTRACE,
        Capability::SysRawio => C::CAP_SYS_RAWIO,
        Capability::SysResource => C::CAP_SYS_RESOURCE,
        Capability::SysTime => C::CAP_SYS_TIME,
        Capability::SysTtyConfig => C::CAP_SYS_TTY_CONFIG,
        Capability::Syslog => C::CAP_SYSLOG,
        Capability::WakeAlarm => C::CAP_WAKE_ALARM,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match() {
        for (oci, expected) in [
            (Capability::Chown, "CAP_CHOWN"),
            (Capability::NetBindService, "CAP_NET_BIND_SERVICE"),
            (Capability::CheckpointRestore, "CAP_CHECKPOINT_RESTORE"),
        ] {
            assert_eq!(to_caps(oci).to_string(), expected);
            assert_eq!(format!("CAP_{oci}"), expected);
        }
    }

    #[test]
    fn bounding_drops_everything_not_kept() {
        let spec: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_KILL"]}"#,
        )
        .unwrap();
        let supported = caps::all();
        let plan = CapabilityPlan::from_spec(&spec, &supported);
        assert_eq!(plan.drop_bounding.len(), supported.len() - 2);
        assert!(!plan.drop_bounding.contains(&caps::Capability::CAP_KILL));
        assert!(plan.effective.contains(&caps::Capability::CAP_KILL));
        assert!(plan.permitted.is_empty());
    }
}
