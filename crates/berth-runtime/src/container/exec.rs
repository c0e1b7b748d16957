//! `exec`: a new process in a running container, like `docker exec`.

use oci_spec::runtime::{Process, Spec};

use super::{clone_child, ensure_single_threaded, kill_and_reap, Created, Runtime};
use crate::cgroup_join::TaskFiles;
use crate::cgroups::CgroupManager;
use crate::error::RuntimeError;
use crate::namespaces::NamespacePlan;
use crate::process::channel::{Message, Reply};
use crate::process::tenant::{self, TenantPlan};
use crate::process::{ProcessPlan, Stdio};

impl Runtime {
    /// Prepares `process` to run inside running container `id` and stops it at the start
    /// barrier, exactly like [`Runtime::create`]; call [`Created::start`] to run it.
    ///
    /// The new process is forked from inside the container's pid namespace (so it sees the
    /// container's pid 1), joins the other namespaces in order (user, ipc, uts, net, mnt,
    /// cgroup) and the container's cgroup, and gets the same treatment as the init process:
    /// rlimits, user and groups, capabilities, no_new_privileges, the container's seccomp
    /// profile (read from the bundle's `config.json`), cwd and env. Capabilities and
    /// no_new_privileges left unset in `process` are the container's. The new process is a
    /// child of the caller, which must be single-threaded.
    pub fn exec(&self, id: &str, process: &Process, stdio: Stdio) -> Result<Created, RuntimeError> {
        ensure_single_threaded()?;
        let state = self.state(id)?;
        let not_running = || RuntimeError::NotRunning { id: id.to_string() };
        if !state.is_running() {
            return Err(not_running());
        }
        let config = state.bundle.join("config.json");
        let spec = Spec::load(&config).map_err(|source| RuntimeError::LoadSpec {
            path: config.clone(),
            source,
        })?;
        let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
        // What the caller leaves unset is inherited from the container's own process, so an
        // exec never gets more privileges than the container by omission.
        let mut process = process.clone();
        if let Some(init) = spec.process() {
            if process.capabilities().is_none() {
                process.set_capabilities(init.capabilities().clone());
            }
            if process.no_new_privileges().is_none() {
                process.set_no_new_privileges(init.no_new_privileges());
            }
        }
        let cgroup = CgroupManager::new(&self.cgroup_root, &state.cgroup_path)?;
        let cgroup_tasks = if cgroup.is_v2() {
            TaskFiles::default()
        } else {
            TaskFiles::open(&self.cgroup_root, &state.cgroup_path).map_err(|source| {
                RuntimeError::Io {
                    step: "open the container's cgroup tasks files under",
                    path: self.cgroup_root.clone(),
                    source,
                }
            })?
        };
        let plan = TenantPlan {
            namespaces: NamespacePlan::for_exec(state.pid)?,
            process: ProcessPlan::new(&process, seccomp)?,
            cgroup_tasks,
        };
        // The namespace files are open now; make sure they were the container's.
        if !state.is_running() {
            return Err(not_running());
        }

        // SAFETY: ensure_single_threaded() checked above that no other thread exists.
        let (pid, parent) = unsafe {
            clone_child(
                plan.namespaces.join_pid.as_ref(),
                0,
                stdio,
                tenant::run,
                &plan,
            )
        }?;

        let joined = if plan.cgroup_tasks.is_empty() {
            cgroup.add_task(pid)
        } else {
            Ok(())
        };
        let ready = joined.map_err(RuntimeError::from).and_then(|()| {
            // A child that failed early has closed its end; its Failed message is still queued.
            if let Err(err) = parent.send(&Message::Continue, None) {
                tracing::debug!(?err, "the exec'd process went away before Continue");
            }
            Ok(parent.expect(&Message::Ready)?)
        });
        match ready {
            Ok(Reply::Expected(pty_master)) => Ok(Created {
                pid,
                pty_master,
                channel: parent,
            }),
            Ok(Reply::Failed(failure)) => {
                kill_and_reap(pid);
                Err(failure.into())
            }
            Ok(Reply::Closed) => {
                let status = super::wait(pid)?;
                Err(RuntimeError::ChildExited { status })
            }
            Err(err) => {
                kill_and_reap(pid);
                Err(err)
            }
        }
    }
}
