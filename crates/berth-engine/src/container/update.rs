//! `update`: change a container's resource limits and restart policy, whatever its state.
//!
//! Follows Docker's daemon (`ContainerUpdate`): the request is checked on its own first, then
//! merged into the stored `HostConfig` (0 means "leave as it is"), and the result is stored.
//! A running or paused container also gets the new limits in its live cgroup, and in its
//! `config.json`, which its monitor reads again when the restart policy restarts it. A
//! stopped container gets them at its next start, when `config.json` is written afresh.
//!
//! The store changes in one write transaction that commits only after the live cgroup took the
//! limits, so a limit the kernel refuses (memory below the current usage) leaves the store as
//! it was. The monitor reads the restart policy from the store each time the container exits.

use berth_runtime::cgroups::CgroupError;
use berth_runtime::RuntimeError;
use rusqlite::{params, Connection};

use super::config::{HostConfig, RestartPolicy};
use super::resources::{cgroup_update, rewrite_spec_resources, Resources};
use super::state::{self, Container, ContainerState};
use super::{container_dir, spec};
use crate::{Engine, EngineError, Result};

/// Docker's smallest memory limit and reservation.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// What to change, in the shape of Docker's `UpdateConfig`: 0 (or `None`) leaves a setting
/// as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateOptions {
    pub resources: Resources,
    pub restart_policy: Option<RestartPolicy>,
}

impl UpdateOptions {
    /// Docker's checks of an update request on its own (`verifyPlatformContainerResources`
    /// with `update` set).
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(EngineError::InvalidArgument(m));
        let r = &self.resources;
        if r.memory != 0 && r.memory < MIN_MEMORY {
            return invalid("Minimum memory limit allowed is 6MB".into());
        }
        if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
            return invalid(SWAP_BELOW_MEMORY.into());
        }
        if r.memory_reservation > 0 && r.memory_reservation < MIN_MEMORY {
            return invalid("Minimum memory reservation allowed is 6MB".into());
        }
        if r.memory > 0 && r.memory_reservation > 0 && r.memory < r.memory_reservation {
            return invalid(RESERVATION_ABOVE_MEMORY.into());
        }
        if r.nano_cpus > 0 && r.cpu_period > 0 {
            return invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            );
        }
        if r.nano_cpus > 0 && r.cpu_quota > 0 {
            return invalid(
                "Conflicting options: Nano CPUs and CPU Quota cannot both be set".into(),
            );
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        if r.nano_cpus < 0 || r.nano_cpus > cpus * 1_000_000_000 {
            return invalid(format!(
                "range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
            ));
        }
        if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
            return invalid(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                    .into(),
            );
        }
        if r.cpu_quota > 0 && r.cpu_quota < 1000 {
            return invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)".into());
        }
        Ok(())
    }

    /// Whether the request changes any resource limit (not just the restart policy).
    fn changes_resources(&self) -> bool {
        self.resources != Resources::default()
    }

    /// `host` with this update applied, by Docker's rules (`Container.UpdateContainer`); the
    /// error is the reason, without the container.
    fn merge_into(&self, host: &HostConfig) -> std::result::Result<HostConfig, String> {
        let conflict = |what: &str, set: &str| {
            Err(format!(
                "Conflicting options: {what} cannot be updated as {set} has already been set"
            ))
        };
        let (change, limits) = (&self.resources, &host.resources);
        // --cpus and --cpu-period/--cpu-quota write the same kernel settings.
        if change.nano_cpus > 0 && limits.cpu_period > 0 {
            return conflict("Nano CPUs", "CPU Period");
        }
        if change.nano_cpus > 0 && limits.cpu_quota > 0 {
            return conflict("Nano CPUs", "CPU Quota");
        }
        if change.cpu_period > 0 && limits.nano_cpus > 0 {
            return conflict("CPU Period", "NanoCPUs");
        }
        if change.cpu_quota > 0 && limits.nano_cpus > 0 {
            return conflict("CPU Quota", "NanoCPUs");
        }
        let mut merged = limits.clone();
        // The swap limit the container has now, as Docker stores it at create.
        merged.memory_swap = limits.effective_memory_swap();
        let set = |field: &mut i64, value: i64| {
            if value != 0 {
                *field = value;
            }
        };
        set(&mut merged.cpu_shares, change.cpu_shares);
        set(&mut merged.nano_cpus, change.nano_cpus);
        set(&mut merged.cpu_period, change.cpu_period);
        set(&mut merged.cpu_quota, change.cpu_quota);
        if change.memory != 0 {
            // Unlimited swap (-1) stays unlimited; Docker refuses even that, for no reason.
            if change.memory_swap == 0
                && merged.memory_swap != -1
                && change.memory > merged.memory_swap
            {
                return Err(
                    "Memory limit should be smaller than already set memoryswap limit, \
                            update the memoryswap at the same time"
                        .into(),
                );
            }
            merged.memory = change.memory;
        }
        set(&mut merged.memory_swap, change.memory_swap);
        set(&mut merged.memory_reservation, change.memory_reservation);
        if let Some(limit) = change.pids_limit {
            // Docker's API stores 0 for any "unlimited" given to update.
            merged.pids_limit = Some(limit.max(0));
        }
        // Checked on the result too: a limit set earlier must still fit the new ones, or
        // the next start (and the kernel now) would refuse them.
        if merged.memory_swap > 0 && merged.memory == 0 {
            return Err(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
                    .into(),
            );
        }
        if merged.memory > 0 && merged.memory_swap > 0 && merged.memory_swap < merged.memory {
            return Err(SWAP_BELOW_MEMORY.into());
        }
        if merged.memory > 0 && merged.memory_reservation > merged.memory {
            return Err(RESERVATION_ABOVE_MEMORY.into());
        }
        let mut new = HostConfig {
            resources: merged,
            ..host.clone()
        };
        if let Some(policy) = &self.restart_policy {
            if host.auto_remove && !policy.is_none() {
                return Err(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container"
                        .into(),
                );
            }
            new.restart_policy = policy.clone();
        }
        Ok(new)
    }
}

const SWAP_BELOW_MEMORY: &str =
    "Minimum memoryswap limit should be larger than memory limit, see usage";
const RESERVATION_ABOVE_MEMORY: &str =
    "Minimum memory limit can not be less than memory reservation limit, see usage";

impl Engine {
    /// Applies `update` to container `name_or_id`: stored at once, and live for a running or
    /// paused container. Returns the container as it is now.
    pub fn update_container(&self, name_or_id: &str, update: &UpdateOptions) -> Result<Container> {
        update.validate()?;
        let id = self.container(name_or_id)?.id;
        let cannot = |reason: String| format!("Cannot update container {id}: {reason}");
        let tx = self.store().db().write()?;
        let mut c = state::load(&tx, &id)?.ok_or_else(|| state::no_such_container(name_or_id))?;
        if matches!(c.state, ContainerState::Removing | ContainerState::Dead) {
            return Err(EngineError::Conflict(cannot(
                "container is marked for removal and cannot be \"update\"".into(),
            )));
        }
        let host = update
            .merge_into(&c.host_config)
            .map_err(|reason| EngineError::InvalidArgument(cannot(reason)))?;
        tx.execute(
            "UPDATE containers SET host_config = ?2 WHERE id = ?1",
            params![
                id,
                serde_json::to_string(&host).expect("host config serialises")
            ],
        )?;
        if c.state.is_active() && update.changes_resources() {
            self.apply_live(&c, &host, update)
                .map_err(|reason| EngineError::Conflict(cannot(reason)))?;
        }
        tx.commit()?;
        c.host_config = host;
        Ok(c)
    }

    /// Writes the new limits to the running container's cgroup and to its `config.json`.
    /// On failure, puts back what was changed, as far as it can.
    fn apply_live(
        &self,
        c: &Container,
        host: &HostConfig,
        update: &UpdateOptions,
    ) -> std::result::Result<(), String> {
        let runtime = self.runtime();
        let live = |host: &HostConfig| match runtime
            .update(&c.id, &cgroup_update(&host.resources, &update.resources))
        {
            // Exited meanwhile, or between two runs of a restart policy: the limits
            // apply at the next start, from config.json.
            Err(RuntimeError::NotRunning { .. })
            | Err(RuntimeError::State(_))
            | Err(RuntimeError::Cgroup(CgroupError::NotFound { .. })) => Ok(()),
            other => other,
        };
        let running = matches!(c.state, ContainerState::Running | ContainerState::Paused);
        if running {
            live(host).map_err(|err| {
                let _ = live(&c.host_config);
                crate::monitor::error_text(&err)
            })?;
        }
        let dir = container_dir(self.root(), &c.id);
        let rewritten = spec::read(&dir).and_then(|mut spec| {
            rewrite_spec_resources(&host.resources, &mut spec);
            spec::write(&dir, &spec)
        });
        if let Err(err) = rewritten {
            if running {
                let _ = live(&c.host_config);
            }
            return Err(err.to_string());
        }
        Ok(())
    }
}

/// The restart policy stored for container `id`: the monitor asks each time the container
/// exits, so that `update --restart` takes effect on a running container.
pub(crate) fn stored_restart_policy(conn: &Connection, id: &str) -> Result<RestartPolicy> {
    let policy: Option<String> = conn.query_row(
        "SELECT json_extract(host_config, '$.RestartPolicy') FROM containers WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    Ok(policy
        .and_then(|p| serde_json::from_str(&p).ok())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostConfig {
        HostConfig {
            resources: Resources {
                memory: 64 << 20,
                pids_limit: Some(10),
                ..Resources::default()
            },
            ..HostConfig::default()
        }
    }

    /// An update of `resources` alone.
    fn changing(resources: Resources) -> UpdateOptions {
        UpdateOptions {
            resources,
            restart_policy: None,
        }
    }

    #[test]
    fn requests_are_checked_like_docker() {
        let bad = |u: UpdateOptions| u.validate().unwrap_err().to_string();
        assert_eq!(
            bad(changing(Resources {
                memory: 32 << 20,
                memory_swap: 16 << 20,
                ..Resources::default()
            })),
            SWAP_BELOW_MEMORY
        );
        assert_eq!(
            bad(changing(Resources {
                memory: 1 << 20,
                ..Resources::default()
            })),
            "Minimum memory limit allowed is 6MB"
        );
        assert!(bad(changing(Resources {
            nano_cpus: 1_000_000_000,
            cpu_quota: 50_000,
            ..Resources::default()
        }))
        .contains("Nano CPUs and CPU Quota"));
        assert!(bad(changing(Resources {
            cpu_period: 10,
            ..Resources::default()
        }))
        .starts_with("CPU cfs period"));
        assert!(changing(Resources {
            memory_swap: 32 << 20,
            ..Resources::default()
        })
        .validate()
        .is_ok());
    }

    #[test]
    fn merge_follows_docker() {
        // The swap Docker stored at create (twice the memory) bounds a memory-only update.
        let merged = changing(Resources {
            memory: 100 << 20,
            ..Resources::default()
        })
        .merge_into(&host())
        .unwrap();
        assert_eq!(
            (merged.resources.memory, merged.resources.memory_swap),
            (100 << 20, 128 << 20)
        );
        let err = changing(Resources {
            memory: 200 << 20,
            ..Resources::default()
        })
        .merge_into(&host())
        .unwrap_err();
        assert!(err.starts_with("Memory limit should be smaller"), "{err}");
        // ... unless swap is unlimited.
        let unlimited = HostConfig {
            resources: Resources {
                memory_swap: -1,
                ..host().resources
            },
            ..host()
        };
        assert!(changing(Resources {
            memory: 200 << 20,
            ..Resources::default()
        })
        .merge_into(&unlimited)
        .is_ok());
        // Swap alone below the stored memory limit.
        assert_eq!(
            changing(Resources {
                memory_swap: 32 << 20,
                ..Resources::default()
            })
            .merge_into(&host())
            .unwrap_err(),
            SWAP_BELOW_MEMORY
        );
        // --cpus after --cpu-period, and "unlimited" pids.
        let periodic = HostConfig {
            resources: Resources {
                cpu_period: 50_000,
                ..host().resources
            },
            ..host()
        };
        assert!(changing(Resources {
            nano_cpus: 1_000_000_000,
            ..Resources::default()
        })
        .merge_into(&periodic)
        .unwrap_err()
        .contains("CPU Period has already been set"));
        let merged = changing(Resources {
            pids_limit: Some(-1),
            cpu_shares: 512,
            ..Resources::default()
        })
        .merge_into(&host())
        .unwrap();
        assert_eq!(
            (merged.resources.pids_limit, merged.resources.cpu_shares),
            (Some(0), 512)
        );
        // Zeros leave everything alone.
        assert_eq!(
            UpdateOptions::default().merge_into(&host()).unwrap(),
            HostConfig {
                resources: Resources {
                    memory_swap: 128 << 20,
                    ..host().resources
                },
                ..host()
            }
        );
    }

    #[test]
    fn restart_policy_and_auto_remove() {
        let always = UpdateOptions {
            restart_policy: Some(RestartPolicy::parse("always").unwrap()),
            ..UpdateOptions::default()
        };
        let auto_remove = HostConfig {
            auto_remove: true,
            ..host()
        };
        assert!(always
            .merge_into(&auto_remove)
            .unwrap_err()
            .starts_with("Restart policy cannot be updated because AutoRemove"));
        let no = UpdateOptions {
            restart_policy: Some(RestartPolicy::parse("no").unwrap()),
            ..UpdateOptions::default()
        };
        assert!(no.merge_into(&auto_remove).is_ok());
        assert_eq!(
            always.merge_into(&host()).unwrap().restart_policy.name,
            "always"
        );
        assert!(!always.changes_resources());
    }
}
