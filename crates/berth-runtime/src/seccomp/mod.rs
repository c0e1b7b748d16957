//! Seccomp: an OCI `linux.seccomp` profile compiled to a classic BPF program, and installed.
//!
//! The lifecycle of a filter:
//! 1. the engine writes a profile into `config.json`, normally [`docker_default`] for the
//!    container's bounding capabilities (Docker's default profile, shipped as data in
//!    [`profile`]);
//! 2. the runtime calls [`compile`] in the container's init process before it drops
//!    privileges (it allocates, so do it before the last steps);
//! 3. the init process calls [`install`] (or [`install_with_flags`] with the profile's
//!    `flags`) as the very last step before `execve`, after `prctl(PR_SET_NO_NEW_PRIVS)` or
//!    while it still holds `CAP_SYS_ADMIN`.
//!
//! The compiler is berth's own (see [`compile`] for the program's shape): libseccomp is a C
//! dependency, and seccompiler's backend only knows one match action per filter and scans the
//! syscalls linearly. The emitted program is a binary search over syscall numbers, like
//! libseccomp's optimized filters, so that a syscall costs about ten BPF instructions.
//! Its semantics follow runc + libseccomp: unknown syscall names are skipped, rules whose
//! action equals the default action are ignored, several conditions on one argument are
//! ORed, and syscalls newer than every syscall the profile names get `ENOSYS` so that libc
//! falls back to older ones (runc's `-ENOSYS` stub).

mod compile;
pub mod profile;
mod syscalls;
mod tables;

use std::io;

use oci_spec::runtime::LinuxSeccompFilterFlag;
pub use seccompiler::BpfProgram;

pub use compile::compile;
pub use profile::{docker_default, DOCKER_DEFAULT_CAPS};

/// Errors from compiling or installing a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile uses an action berth cannot implement.
    #[error("seccomp profile: action {action} is not supported")]
    UnsupportedAction {
        /// The OCI action name, e.g. `SCMP_ACT_NOTIFY`.
        action: &'static str,
    },
    /// A condition names an argument that syscalls do not have (there are six).
    #[error("seccomp profile: syscall {syscall}: argument index {index} is out of range 0..=5")]
    InvalidArgIndex {
        /// The syscall whose rule carries the condition.
        syscall: String,
        /// The offending index.
        index: usize,
    },
    /// berth has no syscall table for the machine it runs on.
    #[error("seccomp: architecture {arch} is not supported (x86_64 and aarch64 are)")]
    UnsupportedHostArch {
        /// `std::env::consts::ARCH`.
        arch: &'static str,
    },
    /// The program is longer than the kernel accepts (`BPF_MAXINSNS`).
    #[error("seccomp profile compiles to {len} BPF instructions, more than the kernel's {max}")]
    ProgramTooLong {
        /// Length of the compiled program.
        len: usize,
        /// The kernel's limit.
        max: usize,
    },
    /// `install` was given an empty program.
    #[error("refusing to install an empty seccomp program")]
    EmptyProgram,
    /// The kernel refused the filter.
    #[error("failed to load the seccomp filter (seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}), {len} instructions){hint}")]
    Install {
        /// Filter flags passed to the kernel.
        flags: u32,
        /// Program length.
        len: usize,
        /// A hint for the common `EACCES` case.
        hint: &'static str,
        /// The kernel's answer.
        #[source]
        err: io::Error,
    },
}

/// Convenience alias for this module.
pub type Result<T> = std::result::Result<T, SeccompError>;

/// Kernel limit on the length of a classic BPF program (`BPF_MAXINSNS`).
pub const BPF_MAXINSNS: usize = 4096;

/// Installs `program` on the calling thread with no filter flags.
///
/// Must run after `prctl(PR_SET_NO_NEW_PRIVS, 1)` or while the thread has `CAP_SYS_ADMIN`;
/// unlike seccompiler's `apply_filter` it does not set no_new_privs itself, because an OCI
/// bundle may ask for `noNewPrivileges: false`.
pub fn install(program: &BpfProgram) -> Result<()> {
    install_with_flags(program, &[])
}

/// Installs `program` with the profile's `flags` (`SECCOMP_FILTER_FLAG_LOG`, `…_TSYNC`,
/// `…_SPEC_ALLOW`, `…_WAIT_KILLABLE_RECV`).
pub fn install_with_flags(program: &BpfProgram, flags: &[LinuxSeccompFilterFlag]) -> Result<()> {
    if program.is_empty() {
        return Err(SeccompError::EmptyProgram);
    }
    let flags = filter_flags(flags);
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        // seccompiler::sock_filter is #[repr(C)] with the same fields as libc's.
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `fprog` points at `program`, which outlives the call; the kernel copies the
    // instructions (copy_from_user) and keeps no reference to our memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = if rc > 0 {
        // With TSYNC the kernel returns the id of a thread that could not be synchronized.
        io::Error::other(format!("thread {rc} could not be synchronized (TSYNC)"))
    } else {
        io::Error::last_os_error()
    };
    let hint = if err.raw_os_error() == Some(libc::EACCES) {
        ": no_new_privs is not set and the thread lacks CAP_SYS_ADMIN"
    } else {
        ""
    };
    Err(SeccompError::Install {
        flags,
        len: program.len(),
        hint,
        err,
    })
}

/// Maps OCI filter flags to the kernel's `SECCOMP_FILTER_FLAG_*` bits.
pub fn filter_flags(flags: &[LinuxSeccompFilterFlag]) -> u32 {
    flags.iter().fold(0, |acc, flag| {
        acc | match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // Linux 5.19's SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1 << 5).
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 1 << 5,
        } as u32
    })
}

#[cfg(test)]
mod tests;
