//! The stage graph: which stages a `--target` needs and in what order.
//!
//! A stage depends on an earlier stage named by its `FROM`, and on any stage
//! named by `COPY --from=<name|index>` or `RUN --mount=…,from=<name|index>`.
//! Anything else named there is an external image. [`plan`] keeps only the
//! stages reachable from the target and groups them into levels: every
//! stage in a level depends only on stages of earlier levels, so the stages
//! of one level can build in parallel.

use std::collections::BTreeSet;

use crate::args::{BuildArgs, GlobalScope, StageScope};
use crate::instructions::{Dockerfile, InstructionKind, Stage};
use crate::shell::{Lex, ShellError};

/// Errors from planning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// `--target` names no stage.
    #[error("failed to reach build target {0} in Dockerfile")]
    UnknownTarget(String),
    /// Stages refer to each other in a loop.
    #[error("Dockerfile:{line}: circular dependency detected on stage: {stage}")]
    Cycle {
        /// A stage on the cycle.
        stage: String,
        /// Its FROM line.
        line: usize,
    },
    /// `--from=<n>` points past the stages.
    #[error("Dockerfile:{line}: invalid stage index {index} in --from")]
    BadIndex {
        /// The index used.
        index: usize,
        /// The instruction's line.
        line: usize,
    },
    /// A FROM or --from value could not be expanded.
    #[error("Dockerfile:{line}: {source}")]
    Expand {
        /// The instruction's line.
        line: usize,
        /// The expansion error.
        #[source]
        source: ShellError,
    },
    /// A FROM expands to an empty image name.
    #[error("Dockerfile:{line}: base name ({image}) should not be blank")]
    BlankBase {
        /// The unexpanded name.
        image: String,
        /// The FROM line.
        line: usize,
    },
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference (expanded).
    Image(String),
}

/// One stage in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    /// Index in [`Dockerfile::stages`].
    pub index: usize,
    /// Stage name, if any.
    pub name: Option<String>,
    /// The expanded base.
    pub base: Base,
    /// The expanded `--platform` of FROM, if any.
    pub platform: Option<String>,
    /// Stages this one needs (base and `--from`s), sorted.
    pub depends_on: Vec<usize>,
    /// External images used by `COPY --from` / mounts.
    pub images: Vec<String>,
}

/// The stages to build for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// The target stage's index.
    pub target: usize,
    /// The needed stages, in file order.
    pub stages: Vec<StagePlan>,
    /// Stage indexes grouped so each level only needs earlier levels.
    pub levels: Vec<Vec<usize>>,
}

impl BuildPlan {
    /// The plan of stage `index`, if it is needed.
    pub fn stage(&self, index: usize) -> Option<&StagePlan> {
        self.stages.iter().find(|s| s.index == index)
    }
}

/// Find a stage by name (case-insensitive) or index.
pub fn find_stage<'a>(df: &'a Dockerfile, name: &str) -> Option<&'a Stage> {
    let lower = name.to_ascii_lowercase();
    if let Some(s) = df
        .stages
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Some(s);
    }
    name.parse::<usize>().ok().and_then(|i| df.stages.get(i))
}

/// Plan the build of `target` (the last stage when `None`).
pub fn plan(
    df: &Dockerfile,
    target: Option<&str>,
    build: &BuildArgs,
) -> Result<BuildPlan, GraphError> {
    let global = GlobalScope::new(df, build).map_err(|source| GraphError::Expand {
        line: df.global_args.first().map_or(1, |a| a.line),
        source,
    })?;
    let lex = Lex::new(df.directives.escape);
    let all: Vec<StagePlan> = df
        .stages
        .iter()
        .map(|s| stage_plan(df, s, &global, build, &lex))
        .collect::<Result<_, _>>()?;

    let target = match target {
        None => df.stages.len() - 1,
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            df.stages
                .iter()
                .position(|s| s.name.as_deref() == Some(lower.as_str()))
                .ok_or_else(|| GraphError::UnknownTarget(t.to_string()))?
        }
    };

    // Reachable stages from the target.
    let mut needed = BTreeSet::new();
    let mut stack = vec![target];
    while let Some(i) = stack.pop() {
        if needed.insert(i) {
            stack.extend(all[i].depends_on.iter().copied());
        }
    }

    // Kahn's algorithm by levels over the needed stages.
    let mut levels = Vec::new();
    let mut done = BTreeSet::new();
    while done.len() < needed.len() {
        let level: Vec<usize> = needed
            .iter()
            .copied()
            .filter(|i| !done.contains(i) && all[*i].depends_on.iter().all(|d| done.contains(d)))
            .collect();
        if level.is_empty() {
            let i = *needed
                .iter()
                .find(|i| !done.contains(*i))
                .unwrap_or(&target);
            let stage = &df.stages[i];
            return Err(GraphError::Cycle {
                stage: stage.name.clone().unwrap_or_else(|| i.to_string()),
                line: stage.line,
            });
        }
        done.extend(level.iter().copied());
        levels.push(level);
    }
    Ok(BuildPlan {
        target,
        stages: all
            .into_iter()
            .filter(|s| needed.contains(&s.index))
            .collect(),
        levels,
    })
}

fn stage_plan(
    df: &Dockerfile,
    stage: &Stage,
    global: &GlobalScope,
    build: &BuildArgs,
    lex: &Lex,
) -> Result<StagePlan, GraphError> {
    let ex = |line: usize| move |source| GraphError::Expand { line, source };
    let image = lex
        .process_word(&stage.base.image, global.values())
        .map_err(ex(stage.line))?;
    let platform = stage
        .base
        .platform
        .as_deref()
        .map(|p| lex.process_word(p, global.values()))
        .transpose()
        .map_err(ex(stage.line))?;
    if image.is_empty() {
        return Err(GraphError::BlankBase {
            image: stage.base.image.clone(),
            line: stage.line,
        });
    }
    let mut deps = BTreeSet::new();
    let base = if image.eq_ignore_ascii_case("scratch") {
        Base::Scratch
    } else {
        let lower = image.to_ascii_lowercase();
        match df.stages[..stage.index]
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            Some(s) => {
                deps.insert(s.index);
                Base::Stage(s.index)
            }
            None => Base::Image(image),
        }
    };

    // Walk the stage with its ARG/ENV scope to expand --from values.
    let mut scope = StageScope::new(&[], build);
    let mut images = BTreeSet::new();
    for ins in &stage.instructions {
        let mut froms = Vec::new();
        match &ins.kind {
            InstructionKind::Arg(decls) => {
                for d in decls {
                    scope.declare(d, global, build, lex).map_err(ex(ins.line))?;
                }
            }
            InstructionKind::Env(kv) => {
                let env = scope.expansion_env();
                for p in &kv.pairs {
                    let k = lex.process_word(&p.key, &env).map_err(ex(ins.line))?;
                    let v = lex.process_word(&p.value, &env).map_err(ex(ins.line))?;
                    scope.set_env(&k, &v);
                }
            }
            InstructionKind::Copy(c) => froms.extend(c.from.clone()),
            InstructionKind::Run(r) => froms.extend(r.mounts.iter().filter_map(|m| m.from.clone())),
            _ => {}
        }
        for f in froms {
            let f = lex
                .process_word(&f, &scope.expansion_env())
                .map_err(ex(ins.line))?;
            let lower = f.to_ascii_lowercase();
            if let Some(s) = df
                .stages
                .iter()
                .find(|s| s.name.as_deref() == Some(lower.as_str()))
            {
                deps.insert(s.index);
            } else if let Ok(i) = f.parse::<usize>() {
                if i >= df.stages.len() {
                    return Err(GraphError::BadIndex {
                        index: i,
                        line: ins.line,
                    });
                }
                deps.insert(i);
            } else {
                images.insert(f);
            }
        }
    }
    if deps.contains(&stage.index) {
        return Err(GraphError::Cycle {
            stage: stage
                .name
                .clone()
                .unwrap_or_else(|| stage.index.to_string()),
            line: stage.line,
        });
    }
    Ok(StagePlan {
        index: stage.index,
        name: stage.name.clone(),
        base,
        platform,
        depends_on: deps.into_iter().collect(),
        images: images.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    const MULTI: &str = "ARG GO=1.22\n\
FROM golang:${GO} AS deps\nRUN go mod download\n\
FROM deps AS build\nRUN --mount=type=cache,target=/c,from=cachesrc go build\n\
FROM node AS web\nRUN npm ci\n\
FROM alpine AS test\nCOPY --from=build /bin/app /\n\
FROM scratch AS final\nCOPY --from=build /bin/app /app\nCOPY --from=web /dist /www\nCOPY --from=nginx:1 /etc/nginx /etc/nginx\n\
FROM final AS unused-later\n";

    #[test]
    fn target_pruning_and_levels() {
        let df = parse(MULTI).unwrap();
        let b = BuildArgs::default();
        let p = plan(&df, Some("final"), &b).unwrap();
        let idx: Vec<usize> = p.stages.iter().map(|s| s.index).collect();
        assert_eq!(idx, vec![0, 1, 2, 4]);
        assert_eq!(p.levels, vec![vec![0, 2], vec![1], vec![4]]);
        assert_eq!(p.stage(0).unwrap().base, Base::Image("golang:1.22".into()));
        assert_eq!(p.stage(1).unwrap().base, Base::Stage(0));
        assert_eq!(p.stage(1).unwrap().images, vec!["cachesrc".to_string()]);
        assert_eq!(p.stage(4).unwrap().base, Base::Scratch);
        assert_eq!(p.stage(4).unwrap().images, vec!["nginx:1".to_string()]);

        let p = plan(&df, Some("TEST"), &b).unwrap();
        assert_eq!(p.levels, vec![vec![0], vec![1], vec![3]]);
        let p = plan(&df, None, &b).unwrap();
        assert_eq!(p.target, 5);
        assert_eq!(p.levels.last(), Some(&vec![5]));
        assert_eq!(
            plan(&df, Some("nope"), &b).unwrap_err(),
            GraphError::UnknownTarget("nope".into())
        );
    }

    #[test]
    fn build_args_change_the_base() {
        let df = parse(MULTI).unwrap();
        let b = BuildArgs::new([("GO".to_string(), "1.21".to_string())].into());
        let p = plan(&df, Some("deps"), &b).unwrap();
        assert_eq!(p.stages[0].base, Base::Image("golang:1.21".into()));
    }

    #[test]
    fn index_references_and_cycles() {
        let df = parse("FROM a\nRUN x\nFROM b\nCOPY --from=0 / /\n").unwrap();
        let p = plan(&df, None, &BuildArgs::default()).unwrap();
        assert_eq!(p.levels, vec![vec![0], vec![1]]);
        let df = parse("FROM a\nCOPY --from=7 / /\n").unwrap();
        assert!(matches!(
            plan(&df, None, &BuildArgs::default()),
            Err(GraphError::BadIndex { .. })
        ));
        let df = parse("FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nCOPY --from=x / /\n").unwrap();
        assert!(matches!(
            plan(&df, None, &BuildArgs::default()),
            Err(GraphError::Cycle { .. })
        ));
        let df = parse("FROM a AS x\nCOPY --from=x / /\n").unwrap();
        assert!(matches!(
            plan(&df, None, &BuildArgs::default()),
            Err(GraphError::Cycle { .. })
        ));
        let df = parse("ARG E\nFROM $E\n").unwrap();
        assert!(matches!(
            plan(&df, None, &BuildArgs::default()),
            Err(GraphError::BlankBase { .. })
        ));
    }

    #[test]
    fn from_value_uses_stage_args() {
        let df = parse("FROM a AS one\nFROM b\nARG SRC=one\nCOPY --from=$SRC / /\n").unwrap();
        let p = plan(&df, None, &BuildArgs::default()).unwrap();
        assert_eq!(p.stage(1).unwrap().depends_on, vec![0]);
    }
}
