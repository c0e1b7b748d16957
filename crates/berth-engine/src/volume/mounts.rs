//! A container's mount points: what `-v`, `--mount`, `--volumes-from` and the image's `VOLUME`s
//! resolve to at `create`, kept in the `container_mounts` table (one row per destination), and
//! shown by `inspect` as Docker's `Mounts`.
//!
//! Precedence follows Docker: `--volumes-from` first, then `-v` and `--mount` (which may not
//! name the same destination twice), then an anonymous volume for every image `VOLUME` that
//! nothing else mounts.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use rusqlite::{params, Connection, Row};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    create_in, data_dir, delete_in, load, remove_files, users, validate_name, VolumeRequest,
};
use berth_image::config::RunConfig;

use crate::container::{state, Config, HostConfig};
use crate::{EngineError, Result};

/// Docker's `mount.Mount`: one `--mount` (and one entry of `HostConfig.Mounts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountSpec {
    /// `volume`, `bind` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    pub target: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub propagation: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_copy: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<DriverConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    #[serde(skip_serializing_if = "is_zero")]
    pub size_bytes: i64,
    #[serde(skip_serializing_if = "is_zero_mode")]
    pub mode: u32,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_zero_mode(n: &u32) -> bool {
    *n == 0
}

/// The kinds of mount point.
pub const VOLUME: &str = "volume";
pub const BIND: &str = "bind";
pub const TMPFS: &str = "tmpfs";

/// One resolved mount point of a container (a row of `container_mounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPoint {
    /// [`VOLUME`], [`BIND`] or [`TMPFS`].
    pub kind: &'static str,
    /// The volume's name (volumes only).
    pub name: String,
    /// The host path (binds only).
    pub source: String,
    pub destination: String,
    /// Docker's `Mode`: the mode text given with `-v` (`ro`, `z`…).
    pub mode: String,
    pub rw: bool,
    /// `rprivate`, `rshared`… (binds only).
    pub propagation: String,
    /// Fill a new volume from the image (off with `nocopy`).
    pub copy_data: bool,
    /// tmpfs mount data (`size=…,mode=…`).
    pub tmpfs: String,
}

impl MountPoint {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<MountPoint> {
        let kind: String = row.get(0)?;
        Ok(MountPoint {
            kind: match kind.as_str() {
                BIND => BIND,
                TMPFS => TMPFS,
                _ => VOLUME,
            },
            name: row.get(1)?,
            source: row.get(2)?,
            destination: row.get(3)?,
            mode: row.get(4)?,
            rw: row.get::<_, i64>(5)? != 0,
            propagation: row.get(6)?,
            copy_data: row.get::<_, i64>(7)? != 0,
            tmpfs: row.get(8)?,
        })
    }

    fn volume(name: String, destination: String, mode: &str, rw: bool, copy_data: bool) -> Self {
        MountPoint {
            kind: VOLUME,
            name,
            source: String::new(),
            destination,
            mode: mode.to_string(),
            rw,
            propagation: String::new(),
            copy_data,
            tmpfs: String::new(),
        }
    }

    /// Docker's entry in a container's `Mounts`.
    pub fn inspect(&self, root: &Path) -> Value {
        match self.kind {
            VOLUME => json!({
                "Type": VOLUME, "Name": self.name,
                "Source": data_dir(root, &self.name).display().to_string(),
                "Destination": self.destination, "Driver": super::LOCAL_DRIVER,
                "Mode": self.mode, "RW": self.rw, "Propagation": "",
            }),
            kind => json!({
                "Type": kind, "Source": self.source, "Destination": self.destination,
                "Mode": self.mode, "RW": self.rw, "Propagation": self.propagation,
            }),
        }
    }
}

/// A container's mount points, parents before children.
pub fn load_mounts(conn: &Connection, container_id: &str) -> Result<Vec<MountPoint>> {
    let mut stmt = conn.prepare_cached(
        "SELECT type, name, source, destination, mode, rw, propagation, copy_data, tmpfs
           FROM container_mounts WHERE container_id = ?1 ORDER BY destination",
    )?;
    let rows = stmt.query_map([container_id], MountPoint::from_row)?;
    let mut points = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    points.sort_by_key(|p| Path::new(&p.destination).components().count());
    Ok(points)
}

/// What `create` records: the mount points and the volumes to create if missing.
#[derive(Debug, Default)]
pub struct MountPlan {
    pub points: Vec<MountPoint>,
    pub volumes: Vec<VolumeRequest>,
    /// Host directories `-v` binds need (Docker creates a missing one).
    bind_dirs: Vec<PathBuf>,
}

/// `invalid mount config for type "T": MESSAGE`, Docker's wording.
fn invalid(kind: &str, message: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidArgument(format!(
        "invalid mount config for type \"{kind}\": {message}"
    ))
}

/// `path` without `.`, doubled or trailing slashes; `None` when it is not absolute.
pub(crate) fn clean_destination(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Some(out.display().to_string())
}

fn destination(kind: &str, path: &str) -> Result<String> {
    if path.is_empty() {
        return Err(invalid(kind, "field Target must not be empty"));
    }
    let cleaned = clean_destination(path).ok_or_else(|| {
        invalid(
            kind,
            format!("invalid mount path: '{path}' mount path must be absolute"),
        )
    })?;
    if cleaned == "/" {
        return Err(EngineError::InvalidArgument(
            "invalid specification: destination can't be '/'".into(),
        ));
    }
    Ok(cleaned)
}

/// Splits a `-v` mode (`ro,Z,rshared,nocopy`) into rw, propagation and copy.
fn parse_mode(spec: &str, mode: &str) -> Result<(bool, String, bool)> {
    let (mut rw, mut propagation, mut copy) = (true, String::new(), true);
    for part in mode.split(',').filter(|m| !m.is_empty()) {
        match part {
            "ro" => rw = false,
            "rw" => rw = true,
            "z" | "Z" | "consistent" | "cached" | "delegated" => {}
            "nocopy" => copy = false,
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {
                propagation = part.to_string()
            }
            _ => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid volume specification: '{spec}': invalid mode: {mode}"
                )))
            }
        }
    }
    Ok((rw, propagation, copy))
}

/// Whether `text` is made only of `-v` mode words (so `/a:ro` is a destination with a mode).
fn is_mode(text: &str) -> bool {
    !text.is_empty() && parse_mode("", text).is_ok()
}

impl MountPlan {
    /// Adds (or replaces) the mount point at its destination.
    fn put(&mut self, point: MountPoint) {
        self.points.retain(|p| p.destination != point.destination);
        self.points.push(point);
    }

    fn has(&self, destination: &str) -> bool {
        self.points.iter().any(|p| p.destination == destination)
    }

    /// An anonymous volume at `destination`.
    fn anonymous(&mut self, destination: String, mode: &str, rw: bool, copy: bool) {
        let request = VolumeRequest::anonymous();
        let name = request.name.clone().expect("anonymous volumes are named");
        self.volumes.push(request);
        self.put(MountPoint::volume(name, destination, mode, rw, copy));
    }

    /// One `-v SPEC`: `/dst`, `name:/dst[:mode]` or `/host:/dst[:mode]`.
    fn bind_flag(&mut self, spec: &str) -> Result<String> {
        let bad =
            || EngineError::InvalidArgument(format!("invalid volume specification: '{spec}'"));
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [dst] => (None, *dst, ""),
            [_, m] if is_mode(m) => return Err(bad()),
            [src, dst] => (Some(*src), *dst, ""),
            [src, dst, mode] => (Some(*src), *dst, *mode),
            _ => return Err(bad()),
        };
        if source == Some("") {
            return Err(bad());
        }
        let kind = match source {
            Some(s) if s.starts_with('/') => BIND,
            _ => VOLUME,
        };
        let target = destination(kind, target)?;
        let (rw, propagation, copy) = parse_mode(spec, mode)?;
        match source {
            None => self.anonymous(target.clone(), mode, rw, copy),
            Some(src) if src.starts_with('/') => {
                let src = clean_destination(src).expect("absolute");
                self.bind_dirs.push(PathBuf::from(&src));
                self.put(MountPoint {
                    kind: BIND,
                    name: String::new(),
                    source: src,
                    destination: target.clone(),
                    mode: mode.to_string(),
                    rw,
                    propagation: if propagation.is_empty() {
                        "rprivate".into()
                    } else {
                        propagation
                    },
                    copy_data: false,
                    tmpfs: String::new(),
                });
            }
            Some(name) => {
                validate_name(name)?;
                self.volumes.push(VolumeRequest {
                    name: Some(name.to_string()),
                    ..VolumeRequest::default()
                });
                let mode = if mode.is_empty() { "z" } else { mode };
                self.put(MountPoint::volume(
                    name.to_string(),
                    target.clone(),
                    mode,
                    rw,
                    copy,
                ));
            }
        }
        Ok(target)
    }

    /// One `--mount`, validated as Docker's daemon does.
    fn mount_flag(&mut self, m: &MountSpec) -> Result<String> {
        let kind = m.kind.as_str();
        let target = match kind {
            VOLUME | BIND | TMPFS => destination(kind, &m.target)?,
            _ => return Err(invalid(kind, "mount type unknown")),
        };
        let not_allowed =
            |field: &str| invalid(kind, format!("field {field} must not be specified"));
        if kind != BIND && m.bind_options.is_some() {
            return Err(not_allowed("BindOptions"));
        }
        if kind != VOLUME && m.volume_options.is_some() {
            return Err(not_allowed("VolumeOptions"));
        }
        if kind != TMPFS && m.tmpfs_options.is_some() {
            return Err(not_allowed("TmpfsOptions"));
        }
        match kind {
            BIND => {
                if m.source.is_empty() {
                    return Err(invalid(kind, "field Source must not be empty"));
                }
                let source = clean_destination(&m.source).ok_or_else(|| {
                    invalid(
                        kind,
                        format!(
                            "invalid mount path: '{}' mount path must be absolute",
                            m.source
                        ),
                    )
                })?;
                if std::fs::symlink_metadata(&source).is_err() {
                    return Err(invalid(
                        kind,
                        format!("bind source path does not exist: {source}"),
                    ));
                }
                let propagation = m
                    .bind_options
                    .as_ref()
                    .map(|b| b.propagation.clone())
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "rprivate".into());
                parse_mode(&m.target, &propagation).map_err(|_| {
                    invalid(kind, format!("invalid propagation mode: {propagation}"))
                })?;
                self.put(MountPoint {
                    kind: BIND,
                    name: String::new(),
                    source,
                    destination: target.clone(),
                    mode: String::new(),
                    rw: !m.read_only,
                    propagation,
                    copy_data: false,
                    tmpfs: String::new(),
                });
            }
            TMPFS => {
                if !m.source.is_empty() {
                    return Err(not_allowed("Source"));
                }
                let mut data = Vec::new();
                if let Some(t) = &m.tmpfs_options {
                    if t.size_bytes < 0 {
                        return Err(invalid(kind, "invalid tmpfs size"));
                    }
                    if t.size_bytes > 0 {
                        data.push(format!("size={}k", (t.size_bytes + 1023) / 1024));
                    }
                    if t.mode != 0 {
                        data.push(format!("mode={:o}", t.mode));
                    }
                }
                self.put(MountPoint {
                    kind: TMPFS,
                    name: String::new(),
                    source: String::new(),
                    destination: target.clone(),
                    mode: String::new(),
                    rw: !m.read_only,
                    propagation: String::new(),
                    copy_data: false,
                    tmpfs: data.join(","),
                });
            }
            _ => {
                let options = m.volume_options.clone().unwrap_or_default();
                let copy = !options.no_copy;
                if m.source.is_empty() {
                    self.anonymous(target.clone(), "z", !m.read_only, copy);
                } else {
                    validate_name(&m.source)?;
                    let driver = options.driver_config.unwrap_or_default();
                    self.volumes.push(VolumeRequest {
                        name: Some(m.source.clone()),
                        driver: Some(driver.name).filter(|d| !d.is_empty()),
                        labels: options.labels,
                        options: driver.options,
                    });
                    self.put(MountPoint::volume(
                        m.source.clone(),
                        target.clone(),
                        "z",
                        !m.read_only,
                        copy,
                    ));
                }
            }
        }
        Ok(target)
    }
}

/// Resolves the mount flags of a new container; nothing is written except missing `-v` bind
/// directories, after every check passed. The image's `VOLUME`s and the anonymous `-v /path`
/// destinations are recorded in `config.volumes`, as Docker does.
pub(crate) fn plan(
    conn: &Connection,
    host: &HostConfig,
    image: &RunConfig,
    config: &mut Config,
) -> Result<MountPlan> {
    let image_volumes: Vec<String> = image
        .volumes
        .as_ref()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    let mut config_volumes = BTreeMap::new();
    let plan = plan_with(conn, host, &image_volumes, &mut config_volumes)?;
    if !config_volumes.is_empty() {
        config.volumes = Some(config_volumes);
    }
    Ok(plan)
}

fn plan_with(
    conn: &Connection,
    host: &HostConfig,
    image_volumes: &[String],
    config_volumes: &mut BTreeMap<String, Value>,
) -> Result<MountPlan> {
    let mut plan = MountPlan::default();
    for from in &host.volumes_from {
        let (name, mode) = from.split_once(':').unwrap_or((from.as_str(), ""));
        let rw = match mode {
            "" => None,
            "rw" => Some(true),
            "ro" => Some(false),
            _ => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid mode for volumes-from: {mode}"
                )))
            }
        };
        let source = state::resolve(conn, name)?;
        for mut point in load_mounts(conn, &source.id)? {
            if point.kind == TMPFS {
                continue;
            }
            if let Some(rw) = rw {
                point.rw = rw;
            }
            plan.put(point);
        }
    }
    let mut given: Vec<String> = Vec::new();
    let mut seen = |target: String| -> Result<()> {
        if given.contains(&target) {
            return Err(EngineError::InvalidArgument(format!(
                "Duplicate mount point: {target}"
            )));
        }
        given.push(target);
        Ok(())
    };
    for spec in &host.binds {
        let target = plan.bind_flag(spec)?;
        if !spec.contains(':') {
            config_volumes.insert(target.clone(), json!({}));
        }
        seen(target)?;
    }
    for mount in &host.mounts {
        seen(plan.mount_flag(mount)?)?;
    }
    for volume in image_volumes {
        let Some(target) = clean_destination(volume) else {
            continue;
        };
        config_volumes.insert(volume.clone(), json!({}));
        if target != "/" && !plan.has(&target) {
            plan.anonymous(target, "", true, true);
        }
    }
    // Only volumes a mount point still names are created (a later flag may have replaced one).
    let named: Vec<String> = plan.points.iter().map(|p| p.name.clone()).collect();
    plan.volumes
        .retain(|v| v.name.as_ref().is_some_and(|n| named.contains(n)));
    for request in &plan.volumes {
        request.validate()?;
    }
    for dir in &plan.bind_dirs {
        if std::fs::symlink_metadata(dir).is_err() {
            std::fs::create_dir_all(dir).map_err(|source| EngineError::Io {
                action: "create the bind source",
                path: dir.display().to_string(),
                source,
            })?;
        }
    }
    Ok(plan)
}

/// Records the plan for container `id` inside `tx`, creating the volumes it names.
pub(crate) fn record(tx: &Connection, root: &Path, id: &str, plan: &MountPlan) -> Result<()> {
    for request in &plan.volumes {
        create_in(tx, root, request)?;
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO container_mounts
            (container_id, destination, type, name, source, mode, rw, propagation, copy_data, tmpfs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for p in &plan.points {
        stmt.execute(params![
            id,
            p.destination,
            p.kind,
            p.name,
            p.source,
            p.mode,
            p.rw as i64,
            p.propagation,
            p.copy_data as i64,
            p.tmpfs
        ])?;
    }
    Ok(())
}

/// Forgets the mounts of a removed container; with `anonymous_volumes` (`rm -v`, `run --rm`)
/// also removes its anonymous volumes that no other container uses. Named volumes stay.
pub fn container_removed(
    conn: &Connection,
    root: &Path,
    id: &str,
    anonymous_volumes: bool,
) -> Result<()> {
    let points = load_mounts(conn, id)?;
    let mut doomed = Vec::new();
    {
        let tx =
            rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM container_mounts WHERE container_id = ?1", [id])?;
        for p in points.iter().filter(|p| p.kind == VOLUME) {
            let anonymous = load(&tx, &p.name)?.is_some_and(|v| v.is_anonymous());
            if anonymous_volumes && anonymous && users(&tx, &p.name)?.is_empty() {
                delete_in(&tx, &p.name)?;
                doomed.push(p.name.clone());
            }
        }
        tx.commit()?;
    }
    let names: Vec<String> = points
        .iter()
        .filter(|p| p.kind == VOLUME)
        .map(|p| p.name.clone())
        .collect();
    super::activate::unmount_idle(conn, root, &names);
    for name in doomed {
        remove_files(root, &name)?;
    }
    Ok(())
}

/// Docker shows unset `Binds` and `VolumesFrom` of a `HostConfig` as `null`.
pub fn docker_host_nulls(host: &mut Value) {
    for key in ["Binds", "VolumesFrom"] {
        if host[key].as_array().is_some_and(Vec::is_empty) {
            host[key] = Value::Null;
        }
    }
}

/// Docker's `Mounts` of a container's inspect document.
pub fn inspect_mounts(conn: &Connection, root: &Path, container_id: &str) -> Value {
    let points = load_mounts(conn, container_id).unwrap_or_default();
    Value::Array(points.iter().map(|p| p.inspect(root)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(binds: &[&str]) -> Result<MountPlan> {
        let conn = Connection::open_in_memory().unwrap();
        let host = HostConfig {
            binds: binds.iter().map(|s| s.to_string()).collect(),
            ..HostConfig::default()
        };
        plan_with(&conn, &host, &[], &mut BTreeMap::new())
    }

    #[test]
    fn volume_flag_forms() {
        let p = plan_of(&["data:/data:ro", "/tmp:/host", "/anon/"]).unwrap();
        let data = p.points.iter().find(|p| p.destination == "/data").unwrap();
        assert_eq!(
            (data.kind, data.name.as_str(), data.rw),
            (VOLUME, "data", false)
        );
        let host = p.points.iter().find(|p| p.destination == "/host").unwrap();
        assert_eq!((host.kind, host.source.as_str()), (BIND, "/tmp"));
        assert_eq!(host.propagation, "rprivate");
        let anon = p.points.iter().find(|p| p.destination == "/anon").unwrap();
        assert_eq!(anon.name.len(), 64);
        assert_eq!(p.volumes.len(), 2);
    }

    #[test]
    fn bad_volume_flags() {
        for spec in [
            "data",
            "/a:ro",
            "a:/b:bogus",
            "../x:/y",
            ":/y",
            "a:b:c:d",
            "v:/",
        ] {
            assert!(plan_of(&[spec]).is_err(), "{spec}");
        }
        assert!(plan_of(&["a:/x", "b:/x/"]).is_err());
    }

    #[test]
    fn names_are_never_paths() {
        for name in ["a", "../x", "a/b", ".x", "-x", "x y"] {
            assert!(validate_name(name).is_err(), "{name}");
        }
        for name in ["ab", "a.b-c_d", "0x"] {
            assert!(validate_name(name).is_ok(), "{name}");
        }
    }
}
