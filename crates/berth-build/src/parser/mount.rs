//! `RUN --mount=type=cache|bind|tmpfs|secret|ssh,…` values.

use crate::instructions::{Mount, MountType};

/// Split a CSV field list (`a=b,"c=d,e"`), as Go's encoding/csv would for
/// the simple cases `--mount` uses.
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' if in_quotes => in_quotes = false,
            '"' if cur.is_empty() => in_quotes = true,
            ',' if !in_quotes => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if in_quotes {
        return Err(format!("extraneous or missing \" in quoted-field: {s}"));
    }
    out.push(cur);
    Ok(out)
}

fn parse_bool_value(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(format!("invalid value for {key}: {other}")),
    }
}

fn parse_u32(key: &str, v: &str, radix: u32) -> Result<u32, String> {
    u32::from_str_radix(v, radix).map_err(|_| format!("invalid value for {key}: {v}"))
}

/// One `--mount=` value.
pub(crate) fn parse_mount(value: &str) -> Result<Mount, String> {
    let fields = csv_fields(value)?;
    let mut kind = MountType::Bind;
    for f in &fields {
        if let Some(t) = f.trim().strip_prefix("type=") {
            kind = match t.to_ascii_lowercase().as_str() {
                "bind" => MountType::Bind,
                "cache" => MountType::Cache,
                "tmpfs" => MountType::Tmpfs,
                "secret" => MountType::Secret,
                "ssh" => MountType::Ssh,
                other => return Err(format!("unsupported mount type {other:?}")),
            };
        }
    }
    let mut m = Mount {
        kind,
        target: None,
        source: None,
        from: None,
        id: None,
        sharing: None,
        readonly: kind == MountType::Bind,
        required: false,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        env: None,
    };
    for field in fields {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| -> Result<String, String> {
            v.map(str::to_string)
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
        };
        match key.as_str() {
            "type" => {}
            "readonly" | "ro" => m.readonly = parse_bool_value(&key, val)?,
            "readwrite" | "rw" => m.readonly = !parse_bool_value(&key, val)?,
            "required" => m.required = parse_bool_value(&key, val)?,
            "target" | "dst" | "destination" => m.target = Some(need(val)?),
            "source" | "src" => m.source = Some(need(val)?),
            "from" => m.from = Some(need(val)?),
            "id" => m.id = Some(need(val)?),
            "sharing" => {
                let s = need(val)?;
                if !matches!(s.as_str(), "shared" | "private" | "locked") {
                    return Err(format!("unsupported sharing value {s:?}"));
                }
                m.sharing = Some(s);
            }
            "mode" => m.mode = Some(parse_u32(&key, &need(val)?, 8)?),
            "uid" => m.uid = Some(parse_u32(&key, &need(val)?, 10)?),
            "gid" => m.gid = Some(parse_u32(&key, &need(val)?, 10)?),
            "size" if kind == MountType::Tmpfs => m.size = Some(need(val)?),
            "env" if kind == MountType::Secret => m.env = Some(need(val)?),
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    match kind {
        MountType::Secret | MountType::Ssh => {
            if kind == MountType::Secret && m.id.is_none() && m.target.is_none() && m.env.is_none()
            {
                return Err("secret mount requires an id, target or env".into());
            }
            if kind == MountType::Secret && m.target.is_none() && m.env.is_none() {
                m.target = m.id.as_ref().map(|id| format!("/run/secrets/{id}"));
            }
            if kind == MountType::Secret && m.id.is_none() {
                let base = m
                    .target
                    .as_deref()
                    .or(m.env.as_deref())
                    .and_then(|t| t.rsplit('/').next())
                    .unwrap_or_default();
                m.id = Some(base.to_string());
            }
        }
        _ => {
            if m.target.is_none() {
                return Err(format!("mount type={} requires a target", kind_name(kind)));
            }
        }
    }
    Ok(m)
}

fn kind_name(k: MountType) -> &'static str {
    match k {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        let m = parse_mount("type=cache,target=/root/.cache,sharing=locked,id=pip").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.sharing.as_deref(), Some("locked"));
        let m = parse_mount("type=secret,id=tok").unwrap();
        assert_eq!(m.target.as_deref(), Some("/run/secrets/tok"));
        let m = parse_mount("target=/src,from=build,rw").unwrap();
        assert_eq!((m.kind, m.readonly), (MountType::Bind, false));
        let m = parse_mount("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(m.size.as_deref(), Some("64m"));
        assert!(parse_mount("type=cache").is_err());
        assert!(parse_mount("type=nope,target=/x").is_err());
        assert!(parse_mount("type=cache,target=/x,bogus=1").is_err());
    }
}
