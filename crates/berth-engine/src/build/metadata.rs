//! Instructions that only change the image config (ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR,
//! SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER, CMD, ENTRYPOINT; ARG is handled by the
//! executor's scope), and the `CreatedBy` text BuildKit records for every step.

use std::collections::BTreeMap;

use berth_build::instructions::{Healthcheck, Instruction, InstructionKind};
use berth_image::config::{self, Empty, RunConfig};

/// Applies a metadata instruction (already expanded) to `cfg`.
pub(super) fn apply(cfg: &mut RunConfig, ins: &Instruction, shell: &[String]) {
    match &ins.kind {
        InstructionKind::Env(kv) => {
            let mut env = cfg.env.take().unwrap_or_default();
            for p in &kv.pairs {
                let prefix = format!("{}=", p.key);
                let entry = format!("{}={}", p.key, p.value);
                match env.iter_mut().find(|e| e.starts_with(&prefix)) {
                    Some(slot) => *slot = entry,
                    None => env.push(entry),
                }
            }
            cfg.env = Some(env);
        }
        InstructionKind::Label(kv) => {
            let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
            for p in &kv.pairs {
                labels.insert(p.key.clone(), p.value.clone());
            }
        }
        InstructionKind::Maintainer(_) => {}
        InstructionKind::Expose(ports) => {
            let set = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in ports {
                let p = if p.contains('/') {
                    p.clone()
                } else {
                    format!("{p}/tcp")
                };
                set.insert(p, Empty {});
            }
        }
        InstructionKind::Volume(v) => {
            let set = cfg.volumes.get_or_insert_with(BTreeMap::new);
            for p in v {
                set.insert(p.clone(), Empty {});
            }
        }
        InstructionKind::User(u) => cfg.user = u.clone(),
        InstructionKind::Workdir(w) => {
            cfg.working_dir = berth_build::instructions::resolve_workdir(&cfg.working_dir, w);
        }
        InstructionKind::Shell(s) => cfg.shell = Some(s.clone()),
        InstructionKind::StopSignal(s) => cfg.stop_signal = s.clone(),
        InstructionKind::Healthcheck(h) => {
            let nanos = |d: &Option<std::time::Duration>| d.map(|d| d.as_nanos() as i64);
            cfg.healthcheck = Some(match h {
                Healthcheck::None => config::Healthcheck {
                    test: Some(h.test()),
                    ..Default::default()
                },
                Healthcheck::Cmd {
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                    ..
                } => config::Healthcheck {
                    test: Some(h.test()),
                    interval: nanos(interval),
                    timeout: nanos(timeout),
                    start_period: nanos(start_period),
                    start_interval: nanos(start_interval),
                    retries: retries.map(i64::from),
                },
            });
        }
        InstructionKind::Onbuild(inner) => {
            let text = strip_keyword(&ins.original, "ONBUILD");
            let _ = inner;
            cfg.on_build.get_or_insert_with(Vec::new).push(text);
        }
        InstructionKind::Cmd(c) => {
            cfg.cmd = Some(c.to_argv(shell));
        }
        InstructionKind::Entrypoint(c) => {
            cfg.entrypoint = Some(c.to_argv(shell));
            // As in Docker, a new ENTRYPOINT resets the CMD inherited from the base.
            cfg.cmd = None;
        }
        _ => {}
    }
}

/// The instruction text after its keyword, as written.
pub(super) fn strip_keyword(original: &str, keyword: &str) -> String {
    let t = original.trim_start();
    if t.len() >= keyword.len() && t[..keyword.len()].eq_ignore_ascii_case(keyword) {
        t[keyword.len()..].trim().to_string()
    } else {
        t.to_string()
    }
}

fn go_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

/// `CreatedBy` of a step, in BuildKit's spelling.
pub(super) fn created_by(
    ins: &Instruction,
    shell: &[String],
    run_args: &BTreeMap<String, String>,
) -> String {
    match &ins.kind {
        InstructionKind::Run(r) => {
            let argv = r.command.to_argv(shell);
            let args = if run_args.is_empty() {
                String::new()
            } else {
                let kv: Vec<String> = run_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("|{} {} ", kv.len(), kv.join(" "))
            };
            format!("RUN {args}{} # buildkit", argv.join(" "))
        }
        InstructionKind::Copy(_) | InstructionKind::Add(_) => {
            format!("{} # buildkit", ins.original.trim())
        }
        InstructionKind::Cmd(c) => format!("CMD {}", go_list(&c.to_argv(shell))),
        InstructionKind::Entrypoint(c) => format!("ENTRYPOINT {}", go_list(&c.to_argv(shell))),
        InstructionKind::Env(kv) | InstructionKind::Label(kv) => {
            let pairs: Vec<String> = kv
                .pairs
                .iter()
                .map(|p| format!("{}={}", p.key, p.value))
                .collect();
            format!("{} {}", ins.kind.name(), pairs.join(" "))
        }
        InstructionKind::Workdir(w) => format!("WORKDIR {w}"),
        InstructionKind::User(u) => format!("USER {u}"),
        InstructionKind::Shell(s) => format!("SHELL {}", go_list(s)),
        InstructionKind::Healthcheck(h) => format!("HEALTHCHECK {}", go_list(&h.test())),
        InstructionKind::Expose(p) => format!("EXPOSE {}", p.join(" ")),
        InstructionKind::Volume(v) => format!("VOLUME {}", go_list(v)),
        InstructionKind::StopSignal(s) => format!("STOPSIGNAL {s}"),
        _ => ins.original.trim().to_string(),
    }
}
