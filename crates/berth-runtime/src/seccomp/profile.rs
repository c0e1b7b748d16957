//! Docker's default seccomp profile, as data in the binary.
//!
//! Transcribed from moby's `profiles/seccomp/default.json` (the copy in
//! `testdata/moby-default.json` is what the drift test compares against): default action
//! `ERRNO(EPERM)`, one large allow list, then entries gated on the container's capabilities
//! (`includes.caps`: CAP_SYS_ADMIN allows mount, setns, unshare, namespace-creating clone…),
//! on the architecture, and on the kernel version. Without CAP_SYS_ADMIN, `clone` is allowed
//! only when its flags hold no namespace bit, and `clone3` (whose flags live in memory a filter
//! cannot read) fails with `ENOSYS` so that libc falls back to `clone`. `socket(AF_VSOCK, …)`
//! is refused, and `personality` is allowed only for the few personas Docker lists.
//!
//! [`docker_default`] evaluates the gates the way moby's `setupSeccomp` does and returns the
//! plain OCI profile that goes into `config.json`.

use std::sync::OnceLock;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

/// Docker's default capability set (moby `oci/caps/defaults.go`), the bounding set of a
/// container started without `--cap-add`/`--cap-drop`.
pub const DOCKER_DEFAULT_CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// `SCMP_ACT_ERRNO` with moby's `defaultErrnoRet`.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// What an entry does to its syscalls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Allow,
    Errno(u32),
}

/// One argument condition of an entry.
#[derive(Clone, Copy, Debug)]
struct Arg {
    index: usize,
    value: u64,
    op: LinuxSeccompOperator,
}

/// `includes` / `excludes` of an entry: every listed capability and one of the listed
/// architectures (Go's `GOARCH` names) and at least this kernel.
#[derive(Clone, Copy, Debug)]
struct Gate {
    caps: &'static [Capability],
    arches: &'static [&'static str],
    min_kernel: Option<(u32, u32)>,
}

/// An empty gate.
const ANY: Gate = Gate {
    caps: &[],
    arches: &[],
    min_kernel: None,
};

const fn caps(caps: &'static [Capability]) -> Gate {
    Gate { caps, ..ANY }
}

const fn arches(arches: &'static [&'static str]) -> Gate {
    Gate { arches, ..ANY }
}

/// One entry of the profile's `syscalls` list.
#[derive(Debug)]
struct Entry {
    names: &'static [&'static str],
    action: Act,
    args: &'static [Arg],
    includes: Gate,
    excludes: Gate,
}

const fn allow(names: &'static [&'static str]) -> Entry {
    Entry {
        names,
        action: Act::Allow,
        args: &[],
        includes: ANY,
        excludes: ANY,
    }
}

const fn allow_with_caps(names: &'static [&'static str], needed: &'static [Capability]) -> Entry {
    Entry {
        includes: caps(needed),
        ..allow(names)
    }
}

const fn allow_on(names: &'static [&'static str], on: &'static [&'static str]) -> Entry {
    Entry {
        includes: arches(on),
        ..allow(names)
    }
}

const fn personality(args: &'static [Arg]) -> Entry {
    Entry {
        args,
        ..allow(&["personality"])
    }
}

const fn eq(index: usize, value: u64) -> Arg {
    Arg {
        index,
        value,
        op: LinuxSeccompOperator::ScmpCmpEq,
    }
}

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
/// | CLONE_NEWNET: the flags `clone` may not carry without CAP_SYS_ADMIN.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7e02_0000;

/// `AF_VSOCK`: refused, since vsock reaches the host across any network namespace.
const AF_VSOCK: u64 = 40;

/// The profile, entry for entry in moby's order.
static DOCKER_PROFILE: &[Entry] = &[
    allow(&[
        "accept",
        "accept4",
        "access",
        "adjtimex",
        "alarm",
        "bind",
        "brk",
        "capget",
        "capset",
        "chdir",
        "chmod",
        "chown",
        "chown32",
        "clock_adjtime",
        "clock_adjtime64",
        "clock_getres",
        "clock_getres_time64",
        "clock_gettime",
        "clock_gettime64",
        "clock_nanosleep",
        "clock_nanosleep_time64",
        "close",
        "close_range",
        "connect",
        "copy_file_range",
        "creat",
        "dup",
        "dup2",
        "dup3",
        "epoll_create",
        "epoll_create1",
        "epoll_ctl",
        "epoll_ctl_old",
        "epoll_pwait",
        "epoll_pwait2",
        "epoll_wait",
        "epoll_wait_old",
        "eventfd",
        "eventfd2",
        "execve",
        "execveat",
        "exit",
        "exit_group",
        "faccessat",
        "faccessat2",
        "fadvise64",
        "fadvise64_64",
        "fallocate",
        "fanotify_mark",
        "fchdir",
        "fchmod",
        "fchmodat",
        "fchown",
        "fchown32",
        "fchownat",
        "fcntl",
        "fcntl64",
        "fdatasync",
        "fgetxattr",
        "flistxattr",
        "flock",
        "fork",
        "fremovexattr",
        "fsetxattr",
        "fstat",
        "fstat64",
        "fstatat64",
        "fstatfs",
        "fstatfs64",
        "fsync",
        "ftruncate",
        "ftruncate64",
        "futex",
        "futex_time64",
        "futex_waitv",
        "futimesat",
        "getcpu",
        "getcwd",
        "getdents",
        "getdents64",
        "getegid",
        "getegid32",
        "geteuid",
        "geteuid32",
        "getgid",
        "getgid32",
        "getgroups",
        "getgroups32",
        "getitimer",
        "getpeername",
        "getpgid",
        "getpgrp",
        "getpid",
        "getppid",
        "getpriority",
        "getrandom",
        "getresgid",
        "getresgid32",
        "getresuid",
        "getresuid32",
        "getrlimit",
        "get_robust_list",
        "getrusage",
        "getsid",
        "getsockname",
        "getsockopt",
        "get_thread_area",
        "gettid",
        "gettimeofday",
        "getuid",
        "getuid32",
        "getxattr",
        "inotify_add_watch",
        "inotify_init",
        "inotify_init1",
        "inotify_rm_watch",
        "io_cancel",
        "ioctl",
        "io_destroy",
        "io_getevents",
        "io_pgetevents",
        "io_pgetevents_time64",
        "ioprio_get",
        "ioprio_set",
        "io_setup",
        "io_submit",
        "io_uring_enter",
        "io_uring_register",
        "io_uring_setup",
        "ipc",
        "kill",
        "landlock_add_rule",
        "landlock_create_ruleset",
        "landlock_restrict_self",
        "lchown",
        "lchown32",
        "lgetxattr",
        "link",
        "linkat",
        "listen",
        "listxattr",
        "llistxattr",
        "_llseek",
        "lremovexattr",
        "lseek",
        "lsetxattr",
        "lstat",
        "lstat64",
        "madvise",
        "membarrier",
        "memfd_create",
        "memfd_secret",
        "mincore",
        "mkdir",
        "mkdirat",
        "mknod",
        "mknodat",
        "mlock",
        "mlock2",
        "mlockall",
        "mmap",
        "mmap2",
        "mprotect",
        "mq_getsetattr",
        "mq_notify",
        "mq_open",
        "mq_timedreceive",
        "mq_timedreceive_time64",
        "mq_timedsend",
        "mq_timedsend_time64",
        "mq_unlink",
        "mremap",
        "msgctl",
        "msgget",
        "msgrcv",
        "msgsnd",
        "msync",
        "munlock",
        "munlockall",
        "munmap",
        "name_to_handle_at",
        "nanosleep",
        "newfstatat",
        "_newselect",
        "open",
        "openat",
        "openat2",
        "pause",
        "pidfd_open",
        "pidfd_send_signal",
        "pipe",
        "pipe2",
        "pkey_alloc",
        "pkey_free",
        "pkey_mprotect",
        "poll",
        "ppoll",
        "ppoll_time64",
        "prctl",
        "pread64",
        "preadv",
        "preadv2",
        "prlimit64",
        "process_mrelease",
        "pselect6",
        "pselect6_time64",
        "pwrite64",
        "pwritev",
        "pwritev2",
        "read",
        "readahead",
        "readlink",
        "readlinkat",
        "readv",
        "recv",
        "recvfrom",
        "recvmmsg",
        "recvmmsg_time64",
        "recvmsg",
        "remap_file_pages",
        "removexattr",
        "rename",
        "renameat",
        "renameat2",
        "restart_syscall",
        "rmdir",
        "rseq",
        "rt_sigaction",
        "rt_sigpending",
        "rt_sigprocmask",
        "rt_sigqueueinfo",
        "rt_sigreturn",
        "rt_sigsuspend",
        "rt_sigtimedwait",
        "rt_sigtimedwait_time64",
        "rt_tgsigqueueinfo",
        "sched_getaffinity",
        "sched_getattr",
        "sched_getparam",
        "sched_get_priority_max",
        "sched_get_priority_min",
        "sched_getscheduler",
        "sched_rr_get_interval",
        "sched_rr_get_interval_time64",
        "sched_setaffinity",
        "sched_setattr",
        "sched_setparam",
        "sched_setscheduler",
        "sched_yield",
        "seccomp",
        "select",
        "semctl",
        "semget",
        "semop",
        "semtimedop",
        "semtimedop_time64",
        "send",
        "sendfile",
        "sendfile64",
        "sendmmsg",
        "sendmsg",
        "sendto",
        "setfsgid",
        "setfsgid32",
        "setfsuid",
        "setfsuid32",
        "setgid",
        "setgid32",
        "setgroups",
        "setgroups32",
        "setitimer",
        "setpgid",
        "setpriority",
        "setregid",
        "setregid32",
        "setresgid",
        "setresgid32",
        "setresuid",
        "setresuid32",
        "setreuid",
        "setreuid32",
        "setrlimit",
        "set_robust_list",
        "setsid",
        "setsockopt",
        "set_thread_area",
        "set_tid_address",
        "setuid",
        "setuid32",
        "setxattr",
        "shmat",
        "shmctl",
        "shmdt",
        "shmget",
        "shutdown",
        "sigaltstack",
        "signalfd",
        "signalfd4",
        "sigprocmask",
        "sigreturn",
        "socketcall",
        "socketpair",
        "splice",
        "stat",
        "stat64",
        "statfs",
        "statfs64",
        "statx",
        "symlink",
        "symlinkat",
        "sync",
        "sync_file_range",
        "syncfs",
        "sysinfo",
        "tee",
        "tgkill",
        "time",
        "timer_create",
        "timer_delete",
        "timer_getoverrun",
        "timer_gettime",
        "timer_gettime64",
        "timer_settime",
        "timer_settime64",
        "timerfd_create",
        "timerfd_gettime",
        "timerfd_gettime64",
        "timerfd_settime",
        "timerfd_settime64",
        "times",
        "tkill",
        "truncate",
        "truncate64",
        "ugetrlimit",
        "umask",
        "uname",
        "unlink",
        "unlinkat",
        "utime",
        "utimensat",
        "utimensat_time64",
        "utimes",
        "vfork",
        "vmsplice",
        "wait4",
        "waitid",
        "waitpid",
        "write",
        "writev",
    ]),
    Entry {
        includes: Gate {
            min_kernel: Some((4, 8)),
            ..ANY
        },
        ..allow(&["process_vm_readv", "process_vm_writev", "ptrace"])
    },
    Entry {
        args: &[Arg {
            index: 0,
            value: AF_VSOCK,
            op: LinuxSeccompOperator::ScmpCmpNe,
        }],
        ..allow(&["socket"])
    },
    // PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (query).
    personality(&[eq(0, 0)]),
    personality(&[eq(0, 8)]),
    personality(&[eq(0, 0x20000)]),
    personality(&[eq(0, 0x20008)]),
    personality(&[eq(0, 0xffff_ffff)]),
    allow_on(&["sync_file_range2", "swapcontext"], &["ppc64le"]),
    allow_on(
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        &["arm", "arm64"],
    ),
    allow_on(&["arch_prctl"], &["amd64", "x32"]),
    allow_on(&["modify_ldt"], &["amd64", "x32", "x86"]),
    allow_on(
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        &["s390", "s390x"],
    ),
    allow_on(&["riscv_flush_icache"], &["riscv64"]),
    allow_with_caps(&["open_by_handle_at"], &[Capability::DacReadSearch]),
    allow_with_caps(
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        &[Capability::SysAdmin],
    ),
    Entry {
        args: &[Arg {
            index: 0,
            value: CLONE_NAMESPACE_FLAGS,
            op: LinuxSeccompOperator::ScmpCmpMaskedEq,
        }],
        excludes: Gate {
            caps: &[Capability::SysAdmin],
            arches: &["s390", "s390x"],
            min_kernel: None,
        },
        ..allow(&["clone"])
    },
    // s390 parameter ordering for clone is different
    Entry {
        args: &[Arg {
            index: 1,
            value: CLONE_NAMESPACE_FLAGS,
            op: LinuxSeccompOperator::ScmpCmpMaskedEq,
        }],
        includes: arches(&["s390", "s390x"]),
        excludes: caps(&[Capability::SysAdmin]),
        ..allow(&["clone"])
    },
    Entry {
        action: Act::Errno(libc::ENOSYS as u32),
        excludes: caps(&[Capability::SysAdmin]),
        ..allow(&["clone3"])
    },
    allow_with_caps(&["reboot"], &[Capability::SysBoot]),
    allow_with_caps(&["chroot"], &[Capability::SysChroot]),
    allow_with_caps(
        &["delete_module", "init_module", "finit_module"],
        &[Capability::SysModule],
    ),
    allow_with_caps(&["acct"], &[Capability::SysPacct]),
    allow_with_caps(
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        &[Capability::SysPtrace],
    ),
    allow_with_caps(&["iopl", "ioperm"], &[Capability::SysRawio]),
    allow_with_caps(
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        &[Capability::SysTime],
    ),
    allow_with_caps(&["vhangup"], &[Capability::SysTtyConfig]),
    allow_with_caps(
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        &[Capability::SysNice],
    ),
    allow_with_caps(&["syslog"], &[Capability::Syslog]),
    allow_with_caps(&["bpf"], &[Capability::Bpf]),
    allow_with_caps(&["perf_event_open"], &[Capability::Perfmon]),
];

/// Docker's default profile for a container whose bounding set is `capabilities`.
///
/// ```
/// use berth_runtime::seccomp::{docker_default, DOCKER_DEFAULT_CAPS};
/// let profile = docker_default(&DOCKER_DEFAULT_CAPS);
/// assert!(profile.syscalls().as_ref().unwrap().len() > 5);
/// ```
pub fn docker_default(capabilities: &[Capability]) -> LinuxSeccomp {
    docker_default_for(go_arch(), kernel_version(), capabilities)
}

/// [`docker_default`] for another architecture (Go's names: `amd64`, `arm64`, …) and kernel.
fn docker_default_for(arch: &str, kernel: (u32, u32), capabilities: &[Capability]) -> LinuxSeccomp {
    let syscalls: Vec<LinuxSyscall> = DOCKER_PROFILE
        .iter()
        .filter(|entry| entry.applies(arch, kernel, capabilities))
        .map(Entry::to_oci)
        .collect();
    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(DEFAULT_ERRNO));
    profile.set_architectures(Some(oci_arches(arch)));
    profile.set_syscalls(Some(syscalls));
    profile
}

impl Entry {
    /// moby's rule: skip on an excluded arch, on any excluded capability held, or from the
    /// excluded kernel on; then require an included arch, every included capability and the
    /// included kernel.
    fn applies(&self, arch: &str, kernel: (u32, u32), held: &[Capability]) -> bool {
        let ex = &self.excludes;
        if ex.arches.contains(&arch)
            || ex.caps.iter().any(|c| held.contains(c))
            || ex.min_kernel.is_some_and(|min| kernel >= min)
        {
            return false;
        }
        let inc = &self.includes;
        (inc.arches.is_empty() || inc.arches.contains(&arch))
            && inc.caps.iter().all(|c| held.contains(c))
            && match inc.min_kernel {
                Some(min) => kernel >= min,
                None => true,
            }
    }

    fn to_oci(&self) -> LinuxSyscall {
        let mut sys = LinuxSyscall::default();
        sys.set_names(self.names.iter().map(|n| (*n).to_owned()).collect());
        match self.action {
            Act::Allow => {
                sys.set_action(LinuxSeccompAction::ScmpActAllow);
            }
            Act::Errno(errno) => {
                sys.set_action(LinuxSeccompAction::ScmpActErrno);
                sys.set_errno_ret(Some(errno));
            }
        }
        if !self.args.is_empty() {
            let args = self
                .args
                .iter()
                .map(|a| {
                    LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .value(a.value)
                        .op(a.op)
                        .build()
                        .expect("every LinuxSeccompArg field has a default")
                })
                .collect();
            sys.set_args(Some(args));
        }
        sys
    }
}

/// The host architecture under Go's name, which the profile's `arches` gates use.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// moby's `archMap`: the native seccomp architecture and its compat ABIs.
fn oci_arches(go_arch: &str) -> Vec<Arch> {
    match go_arch {
        "amd64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "arm64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        "s390x" => vec![Arch::ScmpArchS390x, Arch::ScmpArchS390],
        "riscv64" => vec![Arch::ScmpArchRiscv64],
        _ => vec![Arch::ScmpArchNative],
    }
}

/// The running kernel's (major, minor), read once.
fn kernel_version() -> (u32, u32) {
    static VERSION: OnceLock<(u32, u32)> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let uts = match nix::sys::utsname::uname() {
            Ok(uts) => uts,
            // uname cannot fail on Linux; assume a kernel new enough for every gate.
            Err(_) => return (u32::MAX, 0),
        };
        parse_kernel_release(&uts.release().to_string_lossy())
    })
}

/// `"6.18.0-rc1-amd64"` → `(6, 18)`.
fn parse_kernel_release(release: &str) -> (u32, u32) {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// moby's `profiles/seccomp/default.json`, byte for byte.
    const MOBY_DEFAULT_JSON: &str = include_str!("testdata/moby-default.json");

    pub(crate) const ALL_CAPS: [Capability; 41] = [
        Capability::AuditControl,
        Capability::AuditRead,
        Capability::AuditWrite,
        Capability::BlockSuspend,
        Capability::Bpf,
        Capability::CheckpointRestore,
        Capability::Chown,
        Capability::DacOverride,
        Capability::DacReadSearch,
        Capability::Fowner,
        Capability::Fsetid,
        Capability::IpcLock,
        Capability::IpcOwner,
        Capability::Kill,
        Capability::Lease,
        Capability::LinuxImmutable,
        Capability::MacAdmin,
        Capability::MacOverride,
        Capability::Mknod,
        Capability::NetAdmin,
        Capability::NetBindService,
        Capability::NetBroadcast,
        Capability::NetRaw,
        Capability::Perfmon,
        Capability::Setgid,
        Capability::Setfcap,
        Capability::Setpcap,
        Capability::Setuid,
        Capability::SysAdmin,
        Capability::SysBoot,
        Capability::SysChroot,
        Capability::SysModule,
        Capability::SysNice,
        Capability::SysPacct,
        Capability::SysPtrace,
        Capability::SysRawio,
        Capability::SysResource,
        Capability::SysTime,
        Capability::SysTtyConfig,
        Capability::Syslog,
        Capability::WakeAlarm,
    ];

    /// moby's `setupSeccomp` applied to the JSON profile: the entries that survive the
    /// includes/excludes gates, as OCI syscalls.
    fn moby_syscalls(arch: &str, kernel: (u32, u32), held: &[Capability]) -> Vec<LinuxSyscall> {
        let doc: serde_json::Value = serde_json::from_str(MOBY_DEFAULT_JSON).unwrap();
        assert_eq!(doc["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(doc["defaultErrnoRet"], 1);
        let caps_of = |gate: &serde_json::Value| -> Vec<Capability> {
            gate["caps"]
                .as_array()
                .map(|caps| {
                    caps.iter()
                        .map(|c| serde_json::from_value(c.clone()).unwrap())
                        .collect()
                })
                .unwrap_or_default()
        };
        let arches_of = |gate: &serde_json::Value| -> Vec<String> {
            gate["arches"]
                .as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default()
        };
        let kernel_of =
            |gate: &serde_json::Value| gate["minKernel"].as_str().map(parse_kernel_release);
        let mut out = Vec::new();
        for entry in doc["syscalls"].as_array().unwrap() {
            let (inc, exc) = (&entry["includes"], &entry["excludes"]);
            if arches_of(exc).iter().any(|a| a == arch)
                || caps_of(exc).iter().any(|c| held.contains(c))
                || kernel_of(exc).is_some_and(|min| kernel >= min)
            {
                continue;
            }
            let arches = arches_of(inc);
            if !arches.is_empty() && !arches.iter().any(|a| a == arch) {
                continue;
            }
            if !caps_of(inc).iter().all(|c| held.contains(c)) {
                continue;
            }
            if kernel_of(inc).is_some_and(|min| kernel < min) {
                continue;
            }
            out.push(serde_json::from_value::<LinuxSyscall>(entry.clone()).unwrap());
        }
        out
    }

    fn cap_sets() -> Vec<Vec<Capability>> {
        let mut sets = vec![Vec::new(), DOCKER_DEFAULT_CAPS.to_vec(), ALL_CAPS.to_vec()];
        for cap in ALL_CAPS {
            sets.push(vec![cap]);
            let mut with = DOCKER_DEFAULT_CAPS.to_vec();
            with.push(cap);
            sets.push(with);
        }
        sets
    }

    #[test]
    fn matches_moby_default_json_for_every_cap_set_and_arch() {
        for arch in ["amd64", "arm64", "s390x", "riscv64", "ppc64le", "386"] {
            for kernel in [(6, 18), (4, 4)] {
                for held in cap_sets() {
                    let ours = docker_default_for(arch, kernel, &held);
                    let theirs = moby_syscalls(arch, kernel, &held);
                    assert_eq!(
                        ours.syscalls().as_ref().unwrap(),
                        &theirs,
                        "drift from moby's default.json for {arch}, kernel {kernel:?}, caps {held:?}"
                    );
                    assert_eq!(ours.default_action(), LinuxSeccompAction::ScmpActErrno);
                    assert_eq!(ours.default_errno_ret(), Some(1));
                }
            }
        }
    }

    /// The names the compiled default filter lets through (arguments all zero) on the
    /// host's native ABI are exactly the names Docker's profile allows there.
    #[test]
    fn compiled_allow_set_matches_docker_names() {
        use crate::seccomp::compile::sim::run;
        use crate::seccomp::syscalls::Arch as Abi;
        use crate::seccomp::tables;

        let Some(abi) = Abi::native() else { return };
        let table = match abi {
            Abi::X86_64 => tables::X86_64,
            _ => tables::AARCH64,
        };
        for held in [DOCKER_DEFAULT_CAPS.to_vec(), ALL_CAPS.to_vec()] {
            let docker = moby_syscalls(go_arch(), kernel_version(), &held);
            let docker_allowed: std::collections::BTreeSet<&str> = docker
                .iter()
                .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow)
                .flat_map(|s| s.names().iter().map(String::as_str))
                .filter(|n| abi.syscall_nr(n).is_some())
                .collect();
            let program = crate::seccomp::compile(&docker_default(&held)).unwrap();
            let compiled_allowed: std::collections::BTreeSet<&str> = table
                .iter()
                .filter(|(_, nr)| run(&program, abi.audit(), u32::from(*nr), [0; 6]) == 0x7fff_0000)
                .map(|(n, _)| *n)
                .collect();
            assert_eq!(compiled_allowed, docker_allowed, "caps {held:?}");
            assert!(compiled_allowed.len() > 250);
            if held.len() == DOCKER_DEFAULT_CAPS.len() {
                for denied in [
                    "mount",
                    "unshare",
                    "setns",
                    "bpf",
                    "reboot",
                    "kexec_load",
                    "clone3",
                ] {
                    assert!(!compiled_allowed.contains(denied), "{denied}");
                }
            }
        }
    }

    #[test]
    fn gates_follow_capabilities() {
        let names = |caps: &[Capability]| -> Vec<String> {
            docker_default_for("amd64", (6, 18), caps)
                .syscalls()
                .as_ref()
                .unwrap()
                .iter()
                .filter(|s| s.args().is_none() && s.action() == LinuxSeccompAction::ScmpActAllow)
                .flat_map(|s| s.names().clone())
                .collect()
        };
        let default = names(&DOCKER_DEFAULT_CAPS);
        assert!(default.contains(&"chroot".to_owned()));
        assert!(default.contains(&"arch_prctl".to_owned()));
        assert!(!default.contains(&"unshare".to_owned()));
        assert!(!default.contains(&"clone".to_owned()));
        let admin = names(&[Capability::SysAdmin]);
        for n in ["mount", "umount2", "unshare", "setns", "clone", "clone3"] {
            assert!(admin.contains(&n.to_owned()), "{n}");
        }
        assert!(names(&[Capability::SysPtrace]).contains(&"kcmp".to_owned()));
        assert!(names(&[Capability::SysModule]).contains(&"finit_module".to_owned()));
        // clone3 is ENOSYS without CAP_SYS_ADMIN
        let p = docker_default_for("amd64", (6, 18), &DOCKER_DEFAULT_CAPS);
        let clone3 = p
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .find(|s| s.names() == &["clone3".to_owned()])
            .unwrap()
            .clone();
        assert_eq!(clone3.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3.errno_ret(), Some(38));
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
    }

    #[test]
    fn kernel_release_parsing() {
        assert_eq!(parse_kernel_release("6.18.0-rc1-amd64"), (6, 18));
        assert_eq!(parse_kernel_release("4.8"), (4, 8));
        assert_eq!(parse_kernel_release("5.10.0+"), (5, 10));
        assert!(kernel_version() >= (4, 8));
    }
}
