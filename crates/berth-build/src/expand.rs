//! Applying word expansion to an instruction, with the same choice of
//! fields as BuildKit: ADD/COPY (sources, destination, flags, here-documents
//! marked for expansion), ENV and LABEL (keys and values), EXPOSE, VOLUME,
//! USER, WORKDIR, STOPSIGNAL, and the values of RUN mounts. Commands (RUN,
//! CMD, ENTRYPOINT, HEALTHCHECK, SHELL) are left to the shell at run time.

use crate::instructions::{CopySource, Instruction, InstructionKind, KeyValue};
use crate::shell::{EnvLookup, Lex, ShellError};

/// An expansion failure, with the instruction's line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {source}")]
pub struct ExpandError {
    /// 1-based line of the instruction.
    pub line: usize,
    /// The word that failed.
    #[source]
    pub source: ShellError,
}

/// Expand `ins` with `env` (ARGs overlaid by ENV, see
/// [`crate::args::StageScope::expansion_env`]).
pub fn expand(
    ins: &Instruction,
    env: &dyn EnvLookup,
    lex: &Lex,
) -> Result<Instruction, ExpandError> {
    let err = |source| ExpandError {
        line: ins.line,
        source,
    };
    let w = |s: &str| lex.process_word(s, env).map_err(err);
    let opt = |s: &Option<String>| s.as_deref().map(&w).transpose();
    let kv = |pairs: &[KeyValue]| -> Result<Vec<KeyValue>, ExpandError> {
        pairs
            .iter()
            .map(|p| {
                Ok(KeyValue {
                    key: w(&p.key)?,
                    value: w(&p.value)?,
                })
            })
            .collect()
    };
    let mut out = ins.clone();
    match &mut out.kind {
        InstructionKind::Env(e) | InstructionKind::Label(e) => e.pairs = kv(&e.pairs)?,
        InstructionKind::Expose(ports) => {
            let mut v = Vec::new();
            for p in ports.iter() {
                v.extend(lex.process_words(p, env).map_err(err)?);
            }
            *ports = v;
        }
        InstructionKind::Volume(v) => {
            *v = v.iter().map(|s| w(s)).collect::<Result<_, _>>()?;
        }
        InstructionKind::User(s) | InstructionKind::Workdir(s) | InstructionKind::StopSignal(s) => {
            *s = w(s)?
        }
        InstructionKind::Copy(c) | InstructionKind::Add(c) => {
            for src in c.sources.iter_mut() {
                match src {
                    CopySource::Path(p) => *p = w(p)?,
                    CopySource::Inline(h) if h.expand => {
                        // Quotes in a here-document body are content.
                        let mut body_lex = *lex;
                        body_lex.skip_process_quotes = true;
                        h.content = body_lex.process_word(&h.content, env).map_err(err)?;
                    }
                    CopySource::Inline(_) => {}
                }
            }
            c.dest = w(&c.dest)?;
            c.from = opt(&c.from)?;
            c.chown = opt(&c.chown)?;
            c.chmod = opt(&c.chmod)?;
            c.checksum = opt(&c.checksum)?;
            c.excludes = c.excludes.iter().map(|s| w(s)).collect::<Result<_, _>>()?;
        }
        InstructionKind::Run(r) => {
            for m in r.mounts.iter_mut() {
                m.target = opt(&m.target)?;
                m.source = opt(&m.source)?;
                m.from = opt(&m.from)?;
                m.id = opt(&m.id)?;
            }
        }
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::{CopySource, InstructionKind};
    use crate::parse;
    use std::collections::BTreeMap;

    #[test]
    fn expands_the_right_fields() {
        let df = parse(
            "FROM a\nENV A=\"$X y\" $X=1\nCOPY --chown=$U <<EOF ${SRC:-s}/* $D/\n\"$X\"\nEOF\nRUN echo $X\nEXPOSE $P\n",
        )
        .unwrap();
        let env: BTreeMap<String, String> =
            [("X", "x"), ("U", "app"), ("D", "/dst"), ("P", "80 443")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let lex = Lex::default();
        let ins = &df.stages[0].instructions;
        let e = expand(&ins[0], &env, &lex).unwrap();
        let InstructionKind::Env(kv) = &e.kind else {
            panic!()
        };
        assert_eq!(
            (kv.pairs[0].value.as_str(), kv.pairs[1].key.as_str()),
            ("x y", "x")
        );
        let c = expand(&ins[1], &env, &lex).unwrap();
        let InstructionKind::Copy(c) = &c.kind else {
            panic!()
        };
        assert_eq!(c.chown.as_deref(), Some("app"));
        assert_eq!(c.dest, "/dst/");
        let CopySource::Inline(h) = &c.sources[0] else {
            panic!()
        };
        assert_eq!(h.content, "\"x\"\n");
        assert_eq!(c.sources[1], CopySource::Path("s/*".into()));
        let r = expand(&ins[2], &env, &lex).unwrap();
        assert_eq!(r, ins[2]);
        let p = expand(&ins[3], &env, &lex).unwrap();
        assert_eq!(
            p.kind,
            InstructionKind::Expose(vec!["80".into(), "443".into()])
        );
        let bad = parse("FROM a\nUSER ${NOPE:?must be set}\n").unwrap();
        let e = expand(&bad.stages[0].instructions[0], &env, &lex).unwrap_err();
        assert_eq!(e.line, 2);
    }
}
