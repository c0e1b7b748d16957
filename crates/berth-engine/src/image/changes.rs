//! `--change` instructions of `import` and `commit`: the Dockerfile instructions that only set
//! image metadata (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR).

use std::collections::BTreeMap;

use berth_image::config::{Empty, RunConfig};

use crate::{EngineError, Result};

/// Applies each `--change` line to `config`, in order.
pub fn apply_changes(config: &mut RunConfig, changes: &[String]) -> Result<()> {
    for change in changes {
        apply_one(config, change.trim())?;
    }
    Ok(())
}

fn apply_one(config: &mut RunConfig, line: &str) -> Result<()> {
    let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let invalid = |why: &str| EngineError::InvalidArgument(format!("{keyword} {why}"));
    match keyword.to_ascii_uppercase().as_str() {
        "CMD" => config.cmd = Some(command_form(rest, &config.shell)),
        "ENTRYPOINT" => config.entrypoint = Some(command_form(rest, &config.shell)),
        "ENV" => {
            for (key, value) in key_values(rest, "ENV")? {
                let env = config.env.get_or_insert_with(Vec::new);
                env.retain(|e| e.split('=').next() != Some(key.as_str()));
                env.push(format!("{key}={value}"));
            }
        }
        "LABEL" => {
            for (key, value) in key_values(rest, "LABEL")? {
                config
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key, value);
            }
        }
        "EXPOSE" => {
            for port in rest.split_whitespace() {
                let port = if port.contains('/') {
                    port.to_string()
                } else {
                    format!("{port}/tcp")
                };
                let number = port.split('/').next().unwrap_or("");
                if number.split('-').any(|p| p.parse::<u16>().is_err()) {
                    return Err(invalid(&format!("has an invalid port: {port}")));
                }
                config
                    .exposed_ports
                    .get_or_insert_with(BTreeMap::new)
                    .insert(port, Empty {});
            }
        }
        "VOLUME" => {
            let volumes = json_array(rest)
                .unwrap_or_else(|| rest.split_whitespace().map(str::to_string).collect());
            for volume in volumes {
                config
                    .volumes
                    .get_or_insert_with(BTreeMap::new)
                    .insert(volume, Empty {});
            }
        }
        "USER" if !rest.is_empty() => config.user = rest.to_string(),
        "WORKDIR" if !rest.is_empty() => {
            config.working_dir = if rest.starts_with('/') || config.working_dir.is_empty() {
                rest.to_string()
            } else {
                format!("{}/{}", config.working_dir.trim_end_matches('/'), rest)
            };
        }
        "STOPSIGNAL" if !rest.is_empty() => config.stop_signal = rest.to_string(),
        "ONBUILD" if !rest.is_empty() => config
            .on_build
            .get_or_insert_with(Vec::new)
            .push(rest.to_string()),
        "USER" | "WORKDIR" | "STOPSIGNAL" | "ONBUILD" => {
            return Err(invalid("requires exactly one argument"))
        }
        _ => {
            return Err(EngineError::InvalidArgument(format!(
                "{keyword} is not a valid change command"
            )))
        }
    }
    Ok(())
}

/// Exec form (`["a","b"]`) as is; shell form wrapped in the image's shell (`/bin/sh -c`).
fn command_form(text: &str, shell: &Option<Vec<String>>) -> Vec<String> {
    if let Some(args) = json_array(text) {
        return args;
    }
    let mut argv = shell
        .clone()
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
    argv.push(text.to_string());
    argv
}

fn json_array(text: &str) -> Option<Vec<String>> {
    if !text.starts_with('[') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// `k=v k2="v 2"` pairs, or the legacy `k v` form.
fn key_values(text: &str, keyword: &str) -> Result<Vec<(String, String)>> {
    let first = text.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (key, value) = text.split_once(char::is_whitespace).ok_or_else(|| {
            EngineError::InvalidArgument(format!("{keyword} requires at least one argument"))
        })?;
        return Ok(vec![(key.to_string(), value.trim().to_string())]);
    }
    let mut pairs = Vec::new();
    for word in shell_words(text) {
        let (key, value) = word.split_once('=').ok_or_else(|| {
            EngineError::InvalidArgument(format!("{keyword} names can not be blank: {word}"))
        })?;
        if key.is_empty() {
            return Err(EngineError::InvalidArgument(format!(
                "{keyword} names can not be blank"
            )));
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// Splits on whitespace outside quotes and removes the quotes.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => word.extend(chars.next()),
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_docker_change_forms() {
        let mut c = RunConfig::default();
        apply_changes(
            &mut c,
            &[
                "CMD [\"/bin/sh\"]".into(),
                "ENTRYPOINT echo hi".into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV C 3".into(),
                "WORKDIR /app".into(),
                "WORKDIR sub".into(),
                "EXPOSE 80 53/udp".into(),
                "USER nobody".into(),
                "LABEL org.x=y".into(),
                "VOLUME [\"/data\"]".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.env.unwrap(), vec!["A=1", "B=two words", "C=3"]);
        assert_eq!(c.working_dir, "/app/sub");
        assert!(c.exposed_ports.unwrap().contains_key("53/udp"));
        assert_eq!(c.user, "nobody");
        assert_eq!(c.labels.unwrap()["org.x"], "y");
        assert!(c.volumes.unwrap().contains_key("/data"));
    }

    #[test]
    fn rejects_unknown_and_bad_changes() {
        let mut c = RunConfig::default();
        assert!(apply_changes(&mut c, &["RUN true".into()]).is_err());
        assert!(apply_changes(&mut c, &["EXPOSE abc".into()]).is_err());
        assert!(apply_changes(&mut c, &["USER".into()]).is_err());
    }
}
