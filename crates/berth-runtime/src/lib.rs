//! berth's OCI runtime: it takes an OCI bundle (`config.json` + rootfs) and runs it isolated.
//!
//! Modules:
//! - [`cgroups`]: cgroup v1 and v2 resource control, freezer and OOM reporting;
//! - [`seccomp`]: compiling an OCI seccomp profile to BPF and Docker's default profile.

pub mod cgroups;
pub mod seccomp;

pub use oci_spec;
