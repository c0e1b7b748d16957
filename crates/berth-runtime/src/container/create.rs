//! `create`: one clone into the new namespaces, the cgroup, the rootfs, and a stop at the
//! start barrier.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::{clone_child, ensure_single_threaded, kill_and_reap, validate_id, Created, Runtime};
use crate::cgroup_join::TaskFiles;
use crate::cgroups::CgroupManager;
use crate::error::RuntimeError;
use crate::process::channel::{Message, Reply};
use crate::process::init::{self, InitPlan};
use crate::process::Stdio;
use crate::state::{proc_stat, State};

impl Runtime {
    /// Creates container `id` from `spec` (read from `bundle/config.json` by the caller;
    /// `root.path` and relative bind sources are taken relative to `bundle`).
    ///
    /// The init process is cloned into the spec's new namespaces (existing ones given by
    /// `path` are joined), put in its cgroup (`linux.cgroupsPath`, default `/berth/<id>`, with
    /// `linux.resources` applied; on cgroup v1 the process moves itself, see `cgroup_join.rs`),
    /// builds its root file system and stops just before `execve`.
    /// It is a child of the caller, which must reap it. Call [`Created::start`] to run the
    /// process.
    ///
    /// The caller must be single-threaded (see [the module docs](super)).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use berth_runtime::{spec_defaults, wait, Runtime, Stdio};
    /// let runtime = Runtime::new("/run/berth/runtime");
    /// let mut spec = spec_defaults::default_spec();
    /// spec.process_mut().as_mut().unwrap().set_args(Some(vec!["true".into()]));
    /// let created = runtime.create("c1", "/var/lib/berth/bundles/c1".as_ref(), &spec, Stdio::default())?;
    /// created.start()?;
    /// let status = wait(created.pid)?;
    /// runtime.delete("c1")?;
    /// # let _ = status; Ok(()) }
    /// ```
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        spec: &Spec,
        stdio: Stdio,
    ) -> Result<Created, RuntimeError> {
        ensure_single_threaded()?;
        validate_id(id)?;
        if State::dir(&self.state_root, id).exists() {
            return Err(crate::state::StateError::AlreadyExists { id: id.to_string() }.into());
        }
        let linux = spec.linux().as_ref();
        let cgroup_path = linux
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("/berth/{id}"));
        let plan = InitPlan::new(bundle, spec, &self.cgroup_root, &cgroup_path)?;

        let cgroup = CgroupManager::new(&self.cgroup_root, &cgroup_path)?;
        let mut cleanup = Cleanup {
            cgroup: Some(&cgroup),
            pid: None,
            state_dir: None,
        };
        cgroup.apply(linux.and_then(|l| l.resources().as_ref()))?;
        let mut plan = plan;
        if !cgroup.is_v2() {
            plan.cgroup_tasks =
                TaskFiles::open(&self.cgroup_root, &cgroup_path).map_err(|source| {
                    RuntimeError::Io {
                        step: "open the container's cgroup tasks files under",
                        path: self.cgroup_root.clone(),
                        source,
                    }
                })?;
        }

        // SAFETY: ensure_single_threaded() checked above that no other thread exists.
        let (pid, parent) = unsafe {
            clone_child(
                plan.namespaces.join_pid.as_ref(),
                plan.namespaces.clone_flags.bits() as u64,
                stdio,
                init::run,
                &plan,
            )
        }?;
        cleanup.pid = Some(pid);

        plan.namespaces.write_id_maps(pid)?;
        if plan.cgroup_tasks.is_empty() {
            cgroup.add_task(pid)?;
        }
        // The child may already have failed (and closed its end) while building its rootfs:
        // then the send fails, but its Failed message is still waiting to be read below.
        if let Err(err) = parent.send(&Message::Continue, None) {
            tracing::debug!(?err, "the container process went away before Continue");
        }

        // Recorded while the child builds its rootfs, so that from here on a crash of the
        // caller leaves a state that names the process and the cgroup to clean up.
        let pid_start_time = proc_stat(pid)
            .ok()
            .flatten()
            .map(|stat| stat.start_time)
            .ok_or_else(|| RuntimeError::NotRunning { id: id.to_string() })?;
        let state = State {
            id: id.to_string(),
            pid,
            pid_start_time,
            bundle: std::path::absolute(bundle).unwrap_or_else(|_| bundle.to_path_buf()),
            cgroup_path,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        state.save(&self.state_root)?;
        cleanup.state_dir = Some(State::dir(&self.state_root, id));

        let pty_master = match parent.expect(&Message::Ready)? {
            Reply::Expected(fd) => fd,
            Reply::Failed(failure) => return Err(failure.into()),
            Reply::Closed => {
                cleanup.pid = None;
                let status = super::wait(pid)?;
                return Err(RuntimeError::ChildExited { status });
            }
        };
        cleanup.disarm();
        Ok(Created {
            pid,
            pty_master,
            channel: parent,
        })
    }
}

/// Undoes a failed create: kills and reaps the child, removes the cgroup and the state.
struct Cleanup<'a> {
    cgroup: Option<&'a CgroupManager>,
    pid: Option<i32>,
    state_dir: Option<PathBuf>,
}

impl Cleanup<'_> {
    fn disarm(&mut self) {
        self.cgroup = None;
        self.pid = None;
        self.state_dir = None;
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            kill_and_reap(pid);
        }
        if let Some(cgroup) = self.cgroup {
            if let Err(err) = cgroup.destroy() {
                tracing::error!(
                    ?err,
                    "failed to remove the cgroup of a container that failed to create"
                );
            }
        }
        if let Some(dir) = &self.state_dir {
            if let Err(err) = std::fs::remove_dir_all(dir) {
                tracing::error!(?err, dir = %dir.display(), "failed to remove the state of a container that failed to create");
            }
        }
    }
}
