//! `image inspect`: the image in the JSON shape of Docker's `GET /images/{name}/json`.

use berth_image::reference::Reference;
use berth_image::{ChainId, Digest};
use serde_json::{json, Map, Value};

use crate::{Engine, Result};

impl Engine {
    /// Docker's image inspect document for the image `name_or_id` names.
    pub fn inspect_image(&self, name_or_id: &str) -> Result<Value> {
        let id = self.resolve_image(name_or_id)?;
        self.inspect_image_id(&id)
    }

    pub fn inspect_image_id(&self, id: &Digest) -> Result<Value> {
        let record = self.store().image(id)?;
        let (raw, config) = self.store().image_config(id)?;
        let raw: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        let familiar = |names: &[String]| -> Vec<String> {
            names
                .iter()
                .map(|n| Reference::parse(n).map_or_else(|_| n.clone(), |r| r.familiar_string()))
                .collect()
        };
        let chain = ChainId::chain(&config.rootfs.diff_ids);
        let lower_dirs: Vec<String> = chain
            .iter()
            .rev()
            .map(|c| self.store().layer_dir(c).display().to_string())
            .collect();
        let mut run_config = docker_container_config();
        if let Some(Value::Object(image_config)) = raw.get("config") {
            for (k, v) in image_config {
                run_config.insert(k.clone(), v.clone());
            }
        }
        let created = config
            .created
            .clone()
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
        let mut doc = json!({
            "Id": id.to_string(),
            "RepoTags": familiar(&record.tags),
            "RepoDigests": familiar(&record.repo_digests),
            "Parent": record.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            "Comment": config.comment().unwrap_or_default(),
            "Created": created,
            "DockerVersion": raw.get("docker_version").and_then(Value::as_str).unwrap_or_default(),
            "Author": config.author.clone().unwrap_or_default(),
            "Config": Value::Object(run_config),
            "Architecture": config.architecture,
            "Os": config.os,
            "Size": record.size,
            "GraphDriver": {
                "Data": if lower_dirs.is_empty() { Value::Null } else {
                    json!({ "LowerDir": lower_dirs.join(":") })
                },
                "Name": "overlay"
            },
            "RootFS": {
                "Type": config.rootfs.kind,
                "Layers": config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()
            },
            "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" }
        });
        if let Some(variant) = &config.variant {
            doc.as_object_mut()
                .expect("object")
                .insert("Variant".into(), Value::String(variant.clone()));
        }
        Ok(doc)
    }
}

/// Docker fills every container-config field in inspect output, null or empty when unset.
fn docker_container_config() -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [
        ("Hostname", json!("")),
        ("Domainname", json!("")),
        ("User", json!("")),
        ("AttachStdin", json!(false)),
        ("AttachStdout", json!(false)),
        ("AttachStderr", json!(false)),
        ("Tty", json!(false)),
        ("OpenStdin", json!(false)),
        ("StdinOnce", json!(false)),
        ("Env", Value::Null),
        ("Cmd", Value::Null),
        ("Image", json!("")),
        ("Volumes", Value::Null),
        ("WorkingDir", json!("")),
        ("Entrypoint", Value::Null),
        ("OnBuild", Value::Null),
        ("Labels", Value::Null),
    ] {
        m.insert(k.into(), v);
    }
    m
}
