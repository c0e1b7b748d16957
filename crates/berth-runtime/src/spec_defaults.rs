//! A Docker-equivalent default [`Spec`]: what `docker run IMAGE` gets before any flag, from
//! moby's `oci/defaults.go`, `daemon/oci_linux.go` and runc's default device allow-list. The
//! engine customises it (command, env, user, hostname, mounts, resources…).
//!
//! Docker's defaults, kept here on purpose:
//! - the 14 default capabilities in the bounding, effective and permitted sets, none
//!   inheritable (since moby 20.10.14, CVE-2022-24769), none ambient;
//! - `no_new_privileges` **off**;
//! - no rlimits: the process inherits the caller's;
//! - `net.ipv4.ip_unprivileged_port_start=0` and `net.ipv4.ping_group_range=0 2147483647`, set
//!   by Docker for containers with their own network namespace (drop them for `--network
//!   host`);
//! - namespaces mount, pid, uts, ipc, net, cgroup.

use std::collections::HashMap;

use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder,
    LinuxDeviceType, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::process::DEFAULT_PATH;

/// Docker's default capabilities (one list, shared with the seccomp profile it gates).
pub use crate::seccomp::DOCKER_DEFAULT_CAPS as DEFAULT_CAPABILITIES;

/// Paths Docker hides from the container.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The default spec: `sh` as root in `/`, rootfs at `rootfs` in the bundle.
pub fn default_spec() -> Spec {
    let caps: oci_spec::runtime::Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .expect("static capability sets are valid");
    // The builder starts from oci-spec's own defaults, which are not Docker's.
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .build()
                .expect("valid user"),
        )
        .args(vec!["sh".to_string()])
        .env(vec![format!("PATH={DEFAULT_PATH}")])
        .cwd("/")
        .capabilities(capabilities)
        .no_new_privileges(false)
        .build()
        .expect("static process is valid");
    let mut process = process;
    process.set_rlimits(None);

    let namespaces = [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|typ| {
        LinuxNamespaceBuilder::default()
            .typ(typ)
            .build()
            .expect("valid namespace")
    })
    .collect::<Vec<_>>();

    let sysctl: HashMap<String, String> = [
        ("net.ipv4.ip_unprivileged_port_start", "0"),
        ("net.ipv4.ping_group_range", "0 2147483647"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
        .resources(
            LinuxResourcesBuilder::default()
                .devices(default_device_cgroup_rules())
                .build()
                .expect("valid resources"),
        )
        .sysctl(sysctl)
        .seccomp(crate::seccomp::docker_default(&DEFAULT_CAPABILITIES))
        .build()
        .expect("static linux section is valid");

    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()
                .expect("valid root"),
        )
        .process(process)
        .mounts(default_mounts())
        .linux(linux)
        .build()
        .expect("static spec is valid");
    spec.set_hostname(None);
    spec.set_annotations(None);
    spec
}

/// Docker's default mounts: /proc, /dev, /dev/pts, /sys, /sys/fs/cgroup, /dev/mqueue,
/// /dev/shm.
pub fn default_mounts() -> Vec<Mount> {
    let mount = |destination: &str, typ: &str, source: &str, options: &[&str]| {
        MountBuilder::default()
            .destination(destination)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
            .expect("static mount is valid")
    };
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
    ]
}

/// The device cgroup rules: deny everything, allow `mknod` of any device, and full access to
/// the default devices and ptys (runc's allow-list, which Docker uses).
pub fn default_device_cgroup_rules() -> Vec<LinuxDeviceCgroup> {
    let rule = |allow: bool,
                typ: LinuxDeviceType,
                major: Option<i64>,
                minor: Option<i64>,
                access: &str| {
        let mut builder = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access(access);
        if typ != LinuxDeviceType::A {
            builder = builder.typ(typ);
        }
        if let Some(major) = major {
            builder = builder.major(major);
        }
        if let Some(minor) = minor {
            builder = builder.minor(minor);
        }
        builder.build().expect("static device rule is valid")
    };
    use LinuxDeviceType::{A, B, C};
    vec![
        rule(false, A, None, None, "rwm"),
        rule(true, C, None, None, "m"),
        rule(true, B, None, None, "m"),
        rule(true, C, Some(1), Some(3), "rwm"), // /dev/null
        rule(true, C, Some(1), Some(8), "rwm"), // /dev/random
        rule(true, C, Some(1), Some(7), "rwm"), // /dev/full
        rule(true, C, Some(5), Some(0), "rwm"), // /dev/tty
        rule(true, C, Some(1), Some(5), "rwm"), // /dev/zero
        rule(true, C, Some(1), Some(9), "rwm"), // /dev/urandom
        rule(true, C, Some(5), Some(1), "rwm"), // /dev/console
        rule(true, C, Some(136), None, "rwm"),  // /dev/pts/*
        rule(true, C, Some(5), Some(2), "rwm"), // /dev/ptmx
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_shape() {
        let spec = default_spec();
        let process = spec.process().as_ref().unwrap();
        let caps = process.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
        assert_eq!(caps.effective(), caps.permitted());
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());
        assert_eq!(process.no_new_privileges(), Some(false));
        assert!(process.rlimits().is_none());
        assert!(spec.hostname().is_none());

        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 6);
        assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 12);
        assert_eq!(linux.readonly_paths().as_ref().unwrap().len(), 5);
        let mounts = spec.mounts().as_ref().unwrap();
        let destinations: Vec<_> = mounts.iter().map(|m| m.destination().clone()).collect();
        assert_eq!(destinations.len(), 7);
        assert!(destinations.contains(&"/dev/shm".into()));
        let rules = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert!(!rules[0].allow());
        assert_eq!(rules[0].typ(), None);
    }

    #[test]
    fn round_trips_through_json() {
        let spec = default_spec();
        let json = serde_json::to_string(&spec).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
    }
}
