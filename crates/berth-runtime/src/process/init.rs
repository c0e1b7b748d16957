//! The container's init process: everything between the clone and the start barrier.
//!
//! Parent side, [`InitPlan::new`] turns the spec into a plan. Child side, [`run`]:
//! signals reset → join the cgroup (v1, [`crate::cgroup_join`]) → join existing namespaces →
//! `setsid` → stdio → rootfs ([`crate::rootfs`]) → wait for the parent's `Continue` (on v2 it
//! has moved us into our cgroup) → unshare the cgroup namespace → console → hostname →
//! sysctls → read-only/masked paths → oom score → rlimits → working directory → report
//! `Ready` → wait for `Start` → [`super::launch`].
//!
//! The parent does its part (id maps, v2 cgroup move, the state file) while the child builds
//! its rootfs: with two cores that overlaps, and the child rarely has to sleep for `Continue`.
//! A new user namespace (the parent writes the id maps) or a fresh cgroup2 mount (it must show
//! the namespace's root) waits for `Continue` first instead.

use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::Spec;

use super::channel::{Channel, ChildFailure, Message, Reply};
use super::launch::StepError;
use super::{finish_child, install_stdio, launch, setup_err, ProcessPlan, Stdio};
use crate::cgroup_join::TaskFiles;
use crate::error::RuntimeError;
use crate::namespaces::NamespacePlan;
use crate::rootfs::device::{default_devices, DevicePlan};
use crate::rootfs::mount::{propagation_flags, CgroupMounts, MountKind, MountPlan};
use crate::rootfs::{self, RootfsPlan};
use crate::{rlimits, sys, tty};

/// `statfs(2)` magic of a cgroup v2 mount.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Everything the init process does, decided before the clone.
#[derive(Debug)]
pub(crate) struct InitPlan {
    pub(crate) namespaces: NamespacePlan,
    pub(crate) rootfs: RootfsPlan,
    pub(crate) hostname: Option<String>,
    pub(crate) domainname: Option<String>,
    pub(crate) sysctls: Vec<(String, String)>,
    pub(crate) process: ProcessPlan,
    /// cgroup v1: the `tasks` files the child writes itself into (see [`crate::cgroup_join`]).
    pub(crate) cgroup_tasks: TaskFiles,
}

impl InitPlan {
    /// Builds the plan from the spec; `cgroup_root`/`cgroup_path` locate the container's
    /// cgroup for `type: cgroup` mounts.
    pub(crate) fn new(
        bundle: &Path,
        spec: &Spec,
        cgroup_root: &Path,
        cgroup_path: &str,
    ) -> Result<Self, RuntimeError> {
        let invalid = |msg: &str| RuntimeError::InvalidSpec(msg.to_string());
        let bundle = std::path::absolute(bundle).map_err(|source| RuntimeError::Io {
            step: "resolve the bundle path",
            path: bundle.to_path_buf(),
            source,
        })?;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| invalid("linux is missing"))?;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| invalid("process is missing"))?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| invalid("root is missing"))?;
        let namespaces = NamespacePlan::for_create(linux)?;

        let mut overlay = None;
        let mut mounts = Vec::new();
        for entry in spec.mounts().iter().flatten() {
            let plan = MountPlan::from_spec(entry, &bundle)?;
            if plan.is_overlay_root() && overlay.is_none() {
                overlay = Some(plan);
            } else {
                mounts.push(plan);
            }
        }

        let spec_devices = linux
            .devices()
            .iter()
            .flatten()
            .map(DevicePlan::from_spec)
            .collect::<Result<Vec<_>, _>>()?;
        let mut devices: Vec<DevicePlan> = default_devices()
            .into_iter()
            .filter(|d| !spec_devices.iter().any(|s| s.path == d.path))
            .collect();
        devices.extend(spec_devices);

        let propagation = match linux.rootfs_propagation().as_deref() {
            None | Some("") => None,
            Some(name) => Some(propagation_flags(name).ok_or_else(|| {
                RuntimeError::InvalidSpec(format!("unknown rootfsPropagation {name:?}"))
            })?),
        };

        let uses_cgroup_mount = mounts.iter().any(|m| m.kind == MountKind::Cgroup);
        let cgroups = if uses_cgroup_mount {
            cgroup_mounts(cgroup_root, cgroup_path, namespaces.new_cgroup)?
        } else {
            CgroupMounts::default()
        };

        let readonly = root.readonly().unwrap_or(false)
            || overlay
                .as_ref()
                .is_some_and(|o: &MountPlan| o.flags.contains(MsFlags::MS_RDONLY));
        let terminal = process.terminal().unwrap_or(false);
        let rootfs = RootfsPlan {
            root: bundle.join(root.path()),
            overlay,
            propagation,
            mounts,
            devices,
            console: terminal,
            readonly,
            masked_paths: paths(linux.masked_paths()),
            readonly_paths: paths(linux.readonly_paths()),
            cgroups,
        };

        let new_uts = namespaces
            .clone_flags
            .contains(nix::sched::CloneFlags::CLONE_NEWUTS);
        let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
        let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
        if (hostname.is_some() || domainname.is_some()) && !new_uts {
            return Err(invalid(
                "a hostname or domainname needs a new uts namespace",
            ));
        }
        let mut sysctls: Vec<(String, String)> = linux
            .sysctl()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        sysctls.sort();
        if let Some((key, _)) = sysctls
            .iter()
            .find(|(key, _)| key.is_empty() || key.contains("..") || key.starts_with(['/', '.']))
        {
            return Err(RuntimeError::InvalidSpec(format!(
                "invalid sysctl name {key:?}"
            )));
        }

        Ok(InitPlan {
            process: ProcessPlan::new(process, linux.seccomp().as_ref())?,
            namespaces,
            rootfs,
            hostname,
            domainname,
            sysctls,
            cgroup_tasks: TaskFiles::default(),
        })
    }
}

fn paths(list: &Option<Vec<String>>) -> Vec<PathBuf> {
    list.iter().flatten().map(PathBuf::from).collect()
}

/// Looks at the host's cgroup mounts once, in the parent.
fn cgroup_mounts(
    cgroup_root: &Path,
    cgroup_path: &str,
    namespaced: bool,
) -> Result<CgroupMounts, RuntimeError> {
    let io_failed = |step: &'static str| {
        let path = cgroup_root.to_path_buf();
        move |source: io::Error| RuntimeError::Io { step, path, source }
    };
    let stat = rustix::fs::statfs(cgroup_root)
        .map_err(|e| io_failed("inspect the cgroup mount")(e.into()))?;
    let unified = stat.f_type as i64 == CGROUP2_SUPER_MAGIC;
    let mut hierarchies = Vec::new();
    if !unified {
        for entry in
            std::fs::read_dir(cgroup_root).map_err(io_failed("list the cgroup hierarchies"))?
        {
            let entry = entry.map_err(io_failed("list the cgroup hierarchies"))?;
            let name: OsString = entry.file_name();
            let Some(name) = name.to_str().map(str::to_string) else {
                continue;
            };
            let file_type = entry
                .file_type()
                .map_err(io_failed("list the cgroup hierarchies"))?;
            let link = if file_type.is_symlink() {
                Some(
                    std::fs::read_link(entry.path())
                        .map_err(io_failed("read a cgroup hierarchy link"))?,
                )
            } else if file_type.is_dir() {
                None
            } else {
                continue;
            };
            hierarchies.push((name, link));
        }
        hierarchies.sort();
    }
    Ok(CgroupMounts {
        root: cgroup_root.to_path_buf(),
        path: PathBuf::from(cgroup_path.trim_start_matches('/')),
        unified,
        namespaced,
        hierarchies,
    })
}

/// How the set-up ended.
enum Barrier {
    /// `Start` came: go on to `execve`.
    Released {
        /// The working directory was entered already (as root, before dropping privileges).
        cwd_entered: bool,
    },
    /// The parent closed the channel without starting us: exit quietly.
    Abandoned,
}

/// The init process's life after the clone. Never returns: it `execve`s or `_exit`s.
pub(crate) fn run(channel: &Channel, plan: &InitPlan, stdio: Stdio) -> ! {
    finish_child(channel, "the container init process", || {
        match setup(channel, plan, stdio) {
            Ok(Barrier::Released { cwd_entered }) => Some(launch::exec(&plan.process, cwd_entered)),
            Ok(Barrier::Abandoned) => None,
            Err(failure) => Some(failure),
        }
    })
}

fn step(step: &'static str) -> impl FnOnce(rustix::io::Errno) -> ChildFailure {
    move |e| setup_err(StepError::new(step, e.into()))
}

/// Waits for `expected` from the parent; `Ok(false)` when the parent went away.
pub(crate) fn wait_for(channel: &Channel, expected: &Message) -> Result<bool, ChildFailure> {
    match channel.expect(expected).map_err(setup_err)? {
        Reply::Expected(_) => Ok(true),
        Reply::Closed => Ok(false),
        Reply::Failed(failure) => Err(failure),
    }
}

fn setup(channel: &Channel, plan: &InitPlan, stdio: Stdio) -> Result<Barrier, ChildFailure> {
    sys::reset_signals().map_err(|e| setup_err(StepError::new("reset signal dispositions", e)))?;
    plan.cgroup_tasks.join_self().map_err(setup_err)?;
    // The parent sends Continue once our id maps are written and we are in our cgroup. Only a
    // new user namespace (ids) or a fresh cgroup2 mount (namespace root) needs that before the
    // rootfs; otherwise the rootfs is built meanwhile and Continue is usually already queued.
    let continue_early =
        plan.namespaces.new_user() || (plan.namespaces.new_cgroup && plan.rootfs.cgroups.unified);
    if continue_early && !wait_for(channel, &Message::Continue)? {
        return Ok(Barrier::Abandoned);
    }
    if plan.namespaces.new_user() {
        // Become the namespace's root so what we create is owned by a mapped id.
        let root_gid = rustix::process::Gid::ROOT;
        rustix::thread::set_thread_res_gid(root_gid, root_gid, root_gid)
            .map_err(step("become gid 0 in the user namespace"))?;
        let root_uid = rustix::process::Uid::ROOT;
        rustix::thread::set_thread_res_uid(root_uid, root_uid, root_uid)
            .map_err(step("become uid 0 in the user namespace"))?;
    }
    plan.namespaces.join().map_err(setup_err)?;
    if continue_early {
        plan.namespaces.unshare_cgroup().map_err(setup_err)?;
    }
    rustix::process::setsid().map_err(step("start a new session"))?;
    let process = &plan.process;
    if !process.terminal {
        install_stdio(stdio).map_err(|e| setup_err(StepError::new("set up stdio", e)))?;
    }
    rustix::process::umask(rustix::fs::Mode::empty());

    rootfs::prepare(&plan.rootfs).map_err(setup_err)?;
    if !continue_early {
        if !wait_for(channel, &Message::Continue)? {
            return Ok(Barrier::Abandoned);
        }
        plan.namespaces.unshare_cgroup().map_err(setup_err)?;
    }
    let mut pty_master = None;
    if process.terminal {
        let pty = tty::open_pty(process.console_size).map_err(setup_err)?;
        tty::attach(&pty.slave).map_err(setup_err)?;
        tty::mount_console(&pty.slave_path).map_err(setup_err)?;
        pty_master = Some(pty.master);
    }
    if let Some(hostname) = &plan.hostname {
        rustix::system::sethostname(hostname.as_bytes()).map_err(step("set the hostname"))?;
    }
    if let Some(domainname) = &plan.domainname {
        rustix::system::setdomainname(domainname.as_bytes()).map_err(step("set the domainname"))?;
    }
    for (key, value) in &plan.sysctls {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value)
            .map_err(|e| setup_err(StepError::new(format!("set sysctl {key}={value}"), e)))?;
    }
    rootfs::finalize(&plan.rootfs).map_err(setup_err)?;
    if let Some(score) = process.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .map_err(|e| setup_err(StepError::new(format!("set oom_score_adj to {score}"), e)))?;
    }
    rlimits::apply(&process.rlimits).map_err(setup_err)?;
    let cwd_entered = rustix::process::chdir(&process.cwd).is_ok();

    channel
        .send(&Message::Ready, pty_master.as_ref().map(|fd| fd.as_fd()))
        .map_err(setup_err)?;
    drop(pty_master);
    if !wait_for(channel, &Message::Start)? {
        return Ok(Barrier::Abandoned);
    }
    Ok(Barrier::Released { cwd_entered })
}
