//! The stage loop: plan the stages the target needs, dispatch their instructions in order, look
//! every layer step up in the cache, and record the final image.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_build::args::{BuildArgs, GlobalScope, Platform, StageScope};
use berth_build::cache_key::{
    base_key, content_digest, select_sources, step_key, CacheKey, Key, StatCache,
};
use berth_build::expand::expand;
use berth_build::graph::{self, Base};
use berth_build::instructions::{default_shell, CopySource, Instruction, InstructionKind};
use berth_build::shell::Lex;
use berth_build::Dockerfile;
use berth_image::config::{History, ImageConfig, RootFs};
use berth_image::store::{LayerInfo, NewImage};
use berth_image::{ChainId, Digest, Reference};
use sha2::{Digest as _, Sha256};

use super::cache::Cache;
use super::context::Context;
use super::copy::{self, CopyFrom};
use super::progress::Progress;
use super::run::{self, RunRequest};
use super::{metadata, BuildError, BuildOptions, BuildOutput, Result};
use crate::Engine;

/// The state of a stage after some of its steps.
#[derive(Clone)]
pub(super) struct StageState {
    pub config: ImageConfig,
    pub layers: Vec<LayerInfo>,
    pub key: CacheKey,
    pub base_id: Option<Digest>,
    /// `created` of the newest history entry (what metadata steps and the image reuse, so that
    /// a fully cached rebuild gives the same image ID).
    pub last_created: Option<String>,
}

impl StageState {
    pub fn lower_dirs(&self, engine: &Engine) -> Vec<PathBuf> {
        self.layers
            .iter()
            .rev()
            .map(|l| engine.store().layer_dir(&l.chain_id))
            .collect()
    }

    pub fn top(&self) -> Option<&ChainId> {
        self.layers.last().map(|l| &l.chain_id)
    }
}

struct Builder<'a> {
    engine: &'a Engine,
    options: &'a BuildOptions,
    progress: &'a mut Progress,
    ctx: Context,
    df: Dockerfile,
    build_args: BuildArgs,
    global: GlobalScope,
    lex: Lex,
    cache: Cache<'a>,
    stat: Option<StatCache>,
    stat_path: PathBuf,
    results: BTreeMap<usize, StageState>,
    clamp: Option<i64>,
    cached: usize,
    executed: usize,
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn build(
    engine: &Engine,
    options: &BuildOptions,
    progress: &mut Progress,
) -> Result<BuildOutput> {
    // Our own mount namespace: any overlay this process mounts (COPY --from) dies with it.
    if let Err(err) = crate::container::sys::private_mount_namespace() {
        tracing::warn!(%err, "build runs without a private mount namespace");
    }
    let store = engine.store();
    store.sweep_temp();
    let ctx = Context::prepare(store, options)?;
    let df = berth_build::parse_named(&ctx.dockerfile, &ctx.dockerfile_name).map_err(|e| {
        BuildError::Parse {
            line: e.line,
            message: e.message,
        }
    })?;
    if df.stages.is_empty() {
        return Err(BuildError::Invalid(
            "failed to solve: the Dockerfile has no FROM instruction".into(),
        ));
    }
    let mut build_args = BuildArgs::new(options.build_args.clone());
    if let Some(p) = &options.platform {
        let want = Platform::parse(p)
            .ok_or_else(|| BuildError::Invalid(format!("invalid platform {p:?}")))?;
        let host = Platform::host();
        if want.os != host.os || want.arch != host.arch {
            return Err(BuildError::Invalid(format!(
                "platform {p} cannot run on this host ({}/{}) and no emulator is installed",
                host.os, host.arch
            )));
        }
        build_args.target = want;
    }
    let global = GlobalScope::new(&df, &build_args)
        .map_err(|e| BuildError::Invalid(format!("failed to expand global ARG: {e}")))?;
    let plan = graph::plan(&df, options.target.as_deref(), &build_args)
        .map_err(|e| BuildError::Invalid(format!("failed to solve: {e}")))?;
    let stat_dir = engine.root().join("build-cache");
    let stat_path = stat_dir.join("stat-cache.json");
    let lex = Lex::new(df.directives.escape);
    let mut b = Builder {
        engine,
        options,
        progress,
        ctx,
        df,
        build_args,
        global,
        lex,
        cache: Cache::open(store)?,
        stat: None,
        stat_path,
        results: BTreeMap::new(),
        clamp: options.source_date_epoch,
        cached: 0,
        executed: 0,
    };
    let order: Vec<usize> = plan.levels.iter().flatten().copied().collect();
    let multi = plan.stages.len() > 1;
    for idx in order {
        let sp = plan
            .stage(idx)
            .cloned()
            .ok_or_else(|| BuildError::Invalid(format!("stage {idx} is not planned")))?;
        let state = b.build_stage(&sp, multi)?;
        b.results.insert(idx, state);
    }
    if let Some(mut stat) = b.stat.take() {
        if let Err(err) = std::fs::create_dir_all(&stat_dir) {
            tracing::warn!(%err, "cannot create the stat cache directory");
        }
        if let Err(err) = stat.save(&b.stat_path) {
            tracing::warn!(%err, "cannot save the stat cache");
        }
    }
    let final_state = b
        .results
        .remove(&plan.target)
        .ok_or_else(|| BuildError::Invalid("the target stage was not built".into()))?;
    b.commit(final_state)
}

impl Builder<'_> {
    fn now(&self) -> String {
        match self.clamp {
            Some(t) => rfc3339(t),
            None => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        }
    }

    fn stage_label(&self, sp: &graph::StagePlan, multi: bool) -> String {
        match (&sp.name, multi) {
            (Some(n), _) => format!("{n} "),
            (None, true) => format!("stage-{} ", sp.index),
            (None, false) => String::new(),
        }
    }

    fn base_state(&mut self, sp: &graph::StagePlan) -> Result<(StageState, String)> {
        let platform = {
            let p = &self.build_args.target;
            if p.variant.is_empty() {
                format!("{}/{}", p.os, p.arch)
            } else {
                format!("{}/{}/{}", p.os, p.arch, p.variant)
            }
        };
        let empty_config = || ImageConfig {
            architecture: berth_image::config::host_architecture().to_string(),
            os: "linux".into(),
            ..Default::default()
        };
        match &sp.base {
            Base::Scratch => Ok((
                StageState {
                    config: empty_config(),
                    layers: Vec::new(),
                    key: base_key("scratch", &platform),
                    base_id: None,
                    last_created: self.clamp.map(rfc3339),
                },
                "scratch".into(),
            )),
            Base::Stage(j) => {
                let s = self.results.get(j).cloned().ok_or_else(|| {
                    BuildError::Invalid(format!("stage {j} was not built before its use"))
                })?;
                let name = self.df.stages[*j]
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("stage-{j}"));
                Ok((s, name))
            }
            Base::Image(name) => {
                let (id, config) = self.resolve_image(name, sp.platform.as_deref())?;
                let layers = self.image_layers(&config)?;
                let shown = Reference::parse(name)
                    .map(|r| r.to_string())
                    .unwrap_or_else(|_| name.clone());
                let mut config = config;
                config.history.iter_mut().for_each(|_| {});
                let last_created = self.clamp.map(rfc3339).or_else(|| config.created.clone());
                Ok((
                    StageState {
                        key: base_key(&id.to_string(), &platform),
                        config,
                        layers,
                        base_id: Some(id),
                        last_created,
                    },
                    shown,
                ))
            }
        }
    }

    fn resolve_image(&self, name: &str, platform: Option<&str>) -> Result<(Digest, ImageConfig)> {
        use crate::registry::PullPolicy;
        let policy = if self.options.pull {
            PullPolicy::Always
        } else {
            PullPolicy::Missing
        };
        let id = match self.engine.store().resolve(name) {
            Ok(id) if !self.options.pull => id,
            _ => self
                .engine
                .ensure_image(name, policy, platform, &crate::registry::quiet)
                .map_err(|e| {
                    BuildError::Invalid(format!(
                        "failed to solve: {name}: failed to resolve source metadata: {e}"
                    ))
                })?,
        };
        let (_, config) = self.engine.store().image_config(&id)?;
        Ok((id, config))
    }

    fn image_layers(&self, config: &ImageConfig) -> Result<Vec<LayerInfo>> {
        let store = self.engine.store();
        let chain = ChainId::chain(&config.rootfs.diff_ids);
        Ok(chain
            .iter()
            .map(|c| store.layer_info(c))
            .collect::<Result<_, _>>()?)
    }

    fn build_stage(&mut self, sp: &graph::StagePlan, multi: bool) -> Result<StageState> {
        let label = self.stage_label(sp, multi);
        let stage = self.df.stages[sp.index].clone();
        let mut instructions: Vec<Instruction> = Vec::new();
        let n_steps = stage.instructions.len() + 1;
        let from = match &sp.base {
            Base::Image(name) => name.clone(),
            Base::Scratch => "scratch".to_string(),
            Base::Stage(j) => self.df.stages[*j]
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{j}")),
        };
        self.progress
            .start(&format!("[{label}1/{n_steps}] FROM {from}"));
        let (mut state, shown) = match self.base_state(sp) {
            Ok(s) => s,
            Err(e) => {
                self.progress.error(&e.to_string());
                return Err(e);
            }
        };
        self.progress.note(&format!("resolve {shown} done"));
        self.progress.done();
        // ONBUILD triggers of the base run first, and are not inherited.
        if let Some(triggers) = state.config.config.on_build.take() {
            for t in triggers {
                let parsed = berth_build::parse(&format!("FROM scratch\n{t}")).map_err(|e| {
                    BuildError::Invalid(format!(
                        "failed to parse ONBUILD trigger {t:?}: {}",
                        e.message
                    ))
                })?;
                if let Some(s) = parsed.stages.into_iter().next() {
                    instructions.extend(s.instructions);
                }
            }
        }
        instructions.extend(stage.instructions.iter().cloned());
        // As BuildKit does, a stage whose image has no PATH gets the default one.
        {
            let env = state.config.config.env.get_or_insert_with(Vec::new);
            if !env.iter().any(|e| e.starts_with("PATH=")) {
                env.insert(0, format!("PATH={}", berth_runtime::DEFAULT_PATH));
            }
        }
        let mut scope = StageScope::new(
            state.config.config.env.as_deref().unwrap_or_default(),
            &self.build_args,
        );
        let total = instructions.len() + 1;
        for (i, ins) in instructions.iter().enumerate() {
            let step = format!("[{label}{}/{total}] {}", i + 2, ins.original.trim());
            self.progress.start(&step);
            match self.dispatch(&mut state, &mut scope, ins) {
                Ok(()) => {}
                Err(e) => {
                    self.progress.error(&e.to_string());
                    return Err(e);
                }
            }
        }
        Ok(state)
    }

    fn dispatch(
        &mut self,
        state: &mut StageState,
        scope: &mut StageScope,
        ins: &Instruction,
    ) -> Result<()> {
        let shell = state
            .config
            .config
            .shell
            .clone()
            .unwrap_or_else(default_shell);
        if let InstructionKind::Arg(decls) = &ins.kind {
            for d in decls {
                scope
                    .declare(d, &self.global, &self.build_args, &self.lex)
                    .map_err(|e| BuildError::Invalid(format!("line {}: {e}", ins.line)))?;
            }
            state.key = step_key(&state.key, &ins.kind, &scope.args_in_scope(), None);
            self.progress.done();
            return Ok(());
        }
        let env = scope.expansion_env();
        let expanded = expand(ins, &env, &self.lex).map_err(|e| {
            BuildError::Invalid(format!("failed to process {:?}: {e}", ins.original))
        })?;
        let args = scope.args_in_scope();
        match &expanded.kind {
            InstructionKind::Run(_) | InstructionKind::Copy(_) | InstructionKind::Add(_) => {
                self.layer_step(state, scope, &expanded, &shell, &args)
            }
            _ => {
                if let InstructionKind::Env(kv) = &expanded.kind {
                    for p in &kv.pairs {
                        scope.set_env(&p.key, &p.value);
                    }
                }
                metadata::apply(&mut state.config.config, &expanded, &shell);
                // WORKDIR creates a directory the layers lack, as BuildKit does: a real layer.
                if let InstructionKind::Workdir(_) = &expanded.kind {
                    let wd = state.config.config.working_dir.clone();
                    let lowers = state.lower_dirs(self.engine);
                    if !copy::is_dir_in(&lowers, &wd) {
                        return self.layer_step(state, scope, &expanded, &shell, &args);
                    }
                }
                state.key = step_key(&state.key, &expanded.kind, &args, None);
                state.config.history.push(History {
                    created: state.last_created.clone(),
                    created_by: Some(metadata::created_by(&expanded, &shell, &args)),
                    comment: Some("buildkit.dockerfile.v0".into()),
                    empty_layer: true,
                    ..Default::default()
                });
                self.progress.done();
                Ok(())
            }
        }
    }

    /// The digest that stands for the sources of a COPY/ADD in its cache key.
    fn sources_digest(
        &mut self,
        state: &StageState,
        copy: &berth_build::instructions::Copy,
        is_add: bool,
    ) -> Result<(Key, CopyFrom)> {
        if let Some(from) = &copy.from {
            let (key, dirs) = match graph::find_stage(&self.df, from).map(|s| s.index) {
                Some(j) => {
                    let s = self.results.get(&j).ok_or_else(|| {
                        BuildError::Invalid(format!("stage {from} was not built"))
                    })?;
                    (s.key, s.lower_dirs(self.engine))
                }
                None => {
                    let (id, config) = self.resolve_image(from, None)?;
                    let layers = self.image_layers(&config)?;
                    let dirs = layers
                        .iter()
                        .rev()
                        .map(|l| self.engine.store().layer_dir(&l.chain_id))
                        .collect();
                    (base_key(&id.to_string(), "from"), dirs)
                }
            };
            return Ok((key, CopyFrom::Layers(dirs)));
        }
        let _ = state;
        let mut paths = Vec::new();
        let mut h = Sha256::new();
        for s in &copy.sources {
            match s {
                CopySource::Path(p) if is_add && copy::is_url(p) => {
                    let body = copy::fetch(p, copy.checksum.as_deref())?;
                    h.update(p.as_bytes());
                    h.update(Sha256::digest(&body));
                }
                CopySource::Path(p) => paths.push(p.clone()),
                CopySource::Inline(_) => {}
            }
        }
        if !paths.is_empty() {
            if self.stat.is_none() {
                self.stat = Some(StatCache::load(&self.stat_path));
            }
            let root = self.ctx.dir.clone();
            let entries = self.ctx.entries()?;
            let selected = select_sources(entries, &paths)
                .map_err(|e| BuildError::Invalid(format!("invalid source pattern: {e}")))?;
            let digest = content_digest(&root, &selected, self.stat.as_mut())
                .map_err(|e| BuildError::Source(e.to_string()))?;
            h.update(digest.0);
        }
        Ok((Key(h.finalize().into()), CopyFrom::Context))
    }

    fn layer_step(
        &mut self,
        state: &mut StageState,
        scope: &StageScope,
        ins: &Instruction,
        shell: &[String],
        args: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut from = CopyFrom::Context;
        let sources = match &ins.kind {
            InstructionKind::Copy(c) => {
                let (k, f) = self.sources_digest(state, c, false)?;
                from = f;
                Some(k)
            }
            InstructionKind::Add(c) => {
                let (k, f) = self.sources_digest(state, c, true)?;
                from = f;
                Some(k)
            }
            _ => None,
        };
        let key = step_key(&state.key, &ins.kind, args, sources.as_ref());
        let created_by = metadata::created_by(ins, shell, args);
        let hit = if self.options.no_cache {
            None
        } else {
            self.cache.get(&key)?
        };
        let (layer, created) = match hit {
            Some(hit) => {
                self.cached += 1;
                self.progress.cached();
                (hit.layer, hit.created)
            }
            None => {
                let dir = match &ins.kind {
                    InstructionKind::Run(r) => {
                        let req = RunRequest {
                            run: r,
                            argv: r.command.to_argv(shell),
                            heredocs: &r.heredocs,
                            env: scope.run_env(),
                            user: state.config.config.user.clone(),
                            cwd: if state.config.config.working_dir.is_empty() {
                                "/".into()
                            } else {
                                state.config.config.working_dir.clone()
                            },
                            lowers: state.lower_dirs(self.engine),
                            network: self.options.network.clone(),
                            context_dir: self.ctx.dir.clone(),
                            secrets: &self.options.secrets,
                        };
                        run::run(self.engine, &req, self.progress)?
                    }
                    InstructionKind::Copy(c) | InstructionKind::Add(c) => {
                        let is_add = matches!(ins.kind, InstructionKind::Add(_));
                        let entries = match from {
                            CopyFrom::Context => {
                                let root = self.ctx.dir.clone();
                                let entries = self.ctx.entries()?.to_vec();
                                copy::Source::Context { root, entries }
                            }
                            CopyFrom::Layers(dirs) => copy::Source::Layers(dirs),
                        };
                        copy::copy(
                            self.engine,
                            &copy::CopyRequest {
                                copy: c,
                                is_add,
                                workdir: &state.config.config.working_dir,
                                lowers: state.lower_dirs(self.engine),
                                source: entries,
                            },
                        )?
                    }
                    InstructionKind::Workdir(_) => {
                        let out = self.engine.store().temp_path("workdir");
                        std::fs::create_dir(&out).map_err(super::io_err("create", &out))?;
                        let guard = super::context::TempDir(out.clone());
                        copy::ensure_dir(
                            &out,
                            &state.lower_dirs(self.engine),
                            &state.config.config.working_dir,
                        )?;
                        std::mem::forget(guard);
                        out
                    }
                    _ => unreachable!("layer_step only gets RUN, COPY, ADD and WORKDIR"),
                };
                let guard = super::context::TempDir(dir.clone());
                let layer = self
                    .engine
                    .store()
                    .add_layer_dir(state.top(), &dir, self.clamp)?;
                drop(guard);
                let created = self.now();
                self.cache.put(&key, &layer, &created)?;
                self.executed += 1;
                self.progress.done();
                (layer, created)
            }
        };
        state.config.rootfs.diff_ids.push(layer.diff_id.clone());
        state.layers.push(layer);
        state.config.history.push(History {
            created: Some(created.clone()),
            created_by: Some(created_by),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer: false,
            ..Default::default()
        });
        state.last_created = Some(created);
        state.key = key;
        Ok(())
    }

    fn commit(&mut self, mut state: StageState) -> Result<BuildOutput> {
        let n = self.progress.start("exporting to image");
        let _ = n;
        if !self.options.labels.is_empty() {
            let labels = state.config.config.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in &self.options.labels {
                labels.insert(k.clone(), v.clone());
            }
        }
        let mut config = state.config;
        config.created = state.last_created.clone();
        config.rootfs = RootFs {
            kind: "layers".into(),
            diff_ids: state.layers.iter().map(|l| l.diff_id.clone()).collect(),
        };
        if config.architecture.is_empty() {
            config.architecture = berth_image::config::host_architecture().into();
        }
        if config.os.is_empty() {
            config.os = "linux".into();
        }
        let bytes = config.to_vec();
        let tags: Vec<Reference> = self
            .options
            .tags
            .iter()
            .map(|t| {
                Reference::parse(t)
                    .map_err(|e| BuildError::Invalid(format!("invalid tag {t:?}: {e}")))
            })
            .collect::<Result<_>>()?;
        let id = self.engine.store().put_image(&NewImage {
            config: &bytes,
            layers: &state.layers,
            parent: state.base_id.take(),
            manifest_digest: None,
            tags: &tags,
            repo_digests: &[],
        })?;
        self.progress.note(&format!("writing image {id} done"));
        for t in &tags {
            self.progress.note(&format!("naming to {t} done"));
            self.engine
                .image_event("tag", &id.to_string(), &t.familiar_string());
        }
        self.progress.done();
        Ok(BuildOutput {
            image_id: id,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            cached_steps: self.cached,
            executed_steps: self.executed,
        })
    }
}
