//! Platforms (`os/arch[/variant]`): parsing `--platform`, choosing from an index, and listing
//! what this machine can run (natively or through binfmt_misc + qemu-user-static).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};

/// An image platform as manifests and `--platform` spell it (GOOS/GOARCH names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Platform {
    /// The platform berth runs on.
    pub fn host() -> Platform {
        let architecture = berth_image::config::host_architecture().to_string();
        let variant = match architecture.as_str() {
            "arm64" => Some("v8".to_string()),
            "arm" => Some("v7".to_string()),
            _ => None,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture,
            variant,
            os_version: None,
        }
    }

    /// Parses `os[/arch[/variant]]` or `arch` as containerd's `platforms.Parse` does,
    /// normalising aliases (`x86_64` → `amd64`, `aarch64` → `arm64`, `armhf` → `arm/v7`).
    pub fn parse(text: &str) -> Result<Platform> {
        let lower = text.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let invalid = || RegistryError::InvalidPlatform(text.to_string());
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(invalid());
        }
        let (os, arch, variant) = match parts.as_slice() {
            [one] if *one == "linux" || *one == "windows" || *one == "darwin" => {
                let host = Platform::host();
                (one.to_string(), host.architecture, host.variant)
            }
            [arch] => ("linux".to_string(), arch.to_string(), None),
            [os, arch] => (os.to_string(), arch.to_string(), None),
            [os, arch, variant] => (os.to_string(), arch.to_string(), Some(variant.to_string())),
            _ => return Err(invalid()),
        };
        let (architecture, variant) = normalize_arch(&arch, variant);
        Ok(Platform {
            os,
            architecture,
            variant,
            os_version: None,
        })
    }

    /// Whether an image built for `candidate` satisfies a request for `self`.
    pub fn matches(&self, candidate: &Platform) -> bool {
        let (arch, variant) = normalize_arch(&candidate.architecture, candidate.variant.clone());
        if candidate.os != self.os || arch != self.architecture {
            return false;
        }
        match (&self.variant, &variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            // An index entry without a variant serves the default variant.
            (Some(want), None) => default_variant(&arch) == Some(want.as_str()),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

fn default_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    }
}

/// containerd's `normalizeArch`.
fn normalize_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    let variant = variant.filter(|v| !v.is_empty());
    match arch {
        "i386" => ("386".into(), None),
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.filter(|v| v != "v1")),
        "aarch64" | "arm64" => {
            let v = match variant.as_deref() {
                Some("8") | Some("v8") | None => Some("v8".to_string()),
                _ => variant,
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => {
            let v = match variant.as_deref() {
                None | Some("7") => Some("v7".to_string()),
                Some("5") | Some("6") | Some("8") => variant.map(|v| format!("v{v}")),
                _ => variant,
            };
            ("arm".into(), v)
        }
        other => (other.to_string(), variant),
    }
}

/// The platforms this machine can run: the host's own (plus 386 on amd64), and every
/// architecture for which a qemu interpreter is registered and enabled in binfmt_misc.
pub fn runnable_platforms() -> Vec<Platform> {
    runnable_platforms_in(Path::new("/proc/sys/fs/binfmt_misc"))
}

/// [`runnable_platforms`] with the binfmt_misc directory passed in (for tests).
pub fn runnable_platforms_in(binfmt_misc: &Path) -> Vec<Platform> {
    let host = Platform::host();
    let mut out = vec![host.clone()];
    if host.architecture == "amd64" {
        out.push(Platform::parse("linux/386").expect("valid platform"));
    }
    let Ok(entries) = std::fs::read_dir(binfmt_misc) else {
        return out;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let Some(arch) = name.strip_prefix("qemu-") else {
            continue;
        };
        let enabled = std::fs::read_to_string(binfmt_misc.join(&name))
            .map(|s| s.lines().next() == Some("enabled"))
            .unwrap_or(false);
        if !enabled {
            continue;
        }
        let platform = match arch {
            "aarch64" => "linux/arm64",
            "arm" => "linux/arm/v7",
            "armeb" => continue,
            "i386" => "linux/386",
            "x86_64" => "linux/amd64",
            "ppc64le" => "linux/ppc64le",
            "s390x" => "linux/s390x",
            "riscv64" => "linux/riscv64",
            "mips64el" => "linux/mips64le",
            "loongarch64" => "linux/loong64",
            _ => continue,
        };
        let platform = Platform::parse(platform).expect("valid platform");
        if !out.contains(&platform) {
            out.push(platform);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            Platform::parse("linux/arm64").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert!(Platform::parse("linux//x").is_err());
    }

    #[test]
    fn matches_index_entries() {
        let want = Platform::parse("linux/arm64").unwrap();
        let entry = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            ..Default::default()
        };
        assert!(want.matches(&entry));
        let amd = Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            ..Default::default()
        };
        assert!(!want.matches(&amd));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        let v6 = Platform {
            variant: Some("v6".into()),
            ..Platform::parse("linux/arm").unwrap()
        };
        assert!(!v7.matches(&v6));
    }

    #[test]
    fn lists_enabled_qemu_interpreters() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("qemu-aarch64"),
            "enabled\ninterpreter /usr/bin/qemu-aarch64-static\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("qemu-s390x"), "disabled\n").unwrap();
        let list: Vec<String> = runnable_platforms_in(dir.path())
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert!(list.contains(&"linux/arm64/v8".to_string()));
        assert!(!list.contains(&"linux/s390x".to_string()));
    }
}
