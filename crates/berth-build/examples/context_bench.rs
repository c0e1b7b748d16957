//! Measure the context pipeline on a directory: parse the Dockerfile, load
//! the ignore file, walk, select `COPY` sources, digest them (without and
//! with a stat cache, and after changing one file), and derive step keys.
//!
//! `cargo run --release -p berth-build --example context_bench -- <dir>`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_build::args::{BuildArgs, GlobalScope, StageScope};
use berth_build::cache_key::{self, StatCache};
use berth_build::context::{self, ContextEntry};
use berth_build::instructions::{CopySource, InstructionKind};
use berth_build::{expand, graph, ignore, shell::Lex};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed());
    }
    (median(times), last.expect("runs > 0"))
}

/// Process CPU time (user + system, all threads) from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the ')'.
    let num = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = num(11) + num(12);
    Duration::from_millis(ticks * 10)
}

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/berth-h5-ctx".into()),
    );
    let dockerfile = dir.join("Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).expect("read Dockerfile");

    let (t_parse, df) = time(20, || berth_build::parse(&text).expect("parse"));
    let (t_ignore, matcher) = time(20, || {
        ignore::matcher_for(&dockerfile, &dir).expect("ignore")
    });
    let (t_walk, entries) = time(20, || context::walk(&dir, &matcher).expect("walk"));
    let files = entries
        .iter()
        .filter(|e| e.kind == context::EntryKind::File)
        .count();
    let bytes: u64 = entries
        .iter()
        .filter(|e| e.kind == context::EntryKind::File)
        .map(|e| e.size)
        .sum();
    println!("parse {t_parse:?}, ignore file {t_ignore:?}");
    println!(
        "walk: {} entries ({files} files, {bytes} bytes) in {t_walk:?} (median of 20)",
        entries.len()
    );
    let best_walk = (0..20)
        .map(|_| {
            let t = Instant::now();
            context::walk(&dir, &matcher).expect("walk");
            t.elapsed()
        })
        .min()
        .unwrap_or_default();
    println!("  walk, best of 20: {best_walk:?}");
    let (t_sel, _) = time(20, || {
        cache_key::select_sources(&entries, &["src/".to_string()])
            .expect("select")
            .len()
    });
    println!("  select COPY src/: {t_sel:?}");

    let selected: Vec<&ContextEntry> =
        cache_key::select_sources(&entries, &["src/".to_string()]).expect("select");
    let (t_cold, d_cold) = time(5, || {
        cache_key::content_digest(&dir, &selected, None).expect("digest")
    });
    println!(
        "digest without stat cache ({} entries): {t_cold:?} -> {d_cold}",
        selected.len()
    );
    let (c0, w0) = (cpu_time(), Instant::now());
    for _ in 0..5 {
        cache_key::content_digest(&dir, &selected, None).expect("digest");
    }
    println!(
        "  per digest: {:?} CPU (all threads), {:?} wall",
        (cpu_time() - c0) / 5,
        w0.elapsed() / 5
    );
    // Reference: one thread hashing the same bytes from memory (best of 7,
    // the least disturbed by other load on the machine).
    let buf = vec![0x5au8; bytes as usize];
    let best = |f: &dyn Fn()| {
        (0..7)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .min()
            .unwrap_or_default()
    };
    let t_sha2 = best(&|| {
        let _ = <sha2::Sha256 as sha2::Digest>::digest(&buf);
    });
    let t_ring = best(&|| {
        let _ = ring::digest::digest(&ring::digest::SHA256, &buf);
    });
    let mb = bytes as f64 / 1e6;
    println!(
        "  one-thread sha256 of {mb:.0} MB in memory, best of 7: sha2 {t_sha2:?} ({:.0} MB/s), ring {t_ring:?} ({:.0} MB/s)",
        mb / t_sha2.as_secs_f64(),
        mb / t_ring.as_secs_f64()
    );
    let t_best = (0..7)
        .map(|_| {
            let t = Instant::now();
            cache_key::content_digest(&dir, &selected, None).expect("digest");
            t.elapsed()
        })
        .min()
        .unwrap_or_default();
    println!("  digest without stat cache, best of 7: {t_best:?}");

    let cache_path = std::env::temp_dir().join("berth-h5-statcache.json");
    let _ = std::fs::remove_file(&cache_path);
    let mut cache = StatCache::load(&cache_path);
    let t = Instant::now();
    let d_fill = cache_key::content_digest(&dir, &selected, Some(&mut cache)).expect("digest");
    let t_fill = t.elapsed();
    let t = Instant::now();
    cache.save(&cache_path).expect("save");
    let t_save = t.elapsed();
    assert_eq!(d_fill, d_cold);
    let (t_load, mut cache) = time(5, || StatCache::load(&cache_path));
    let (t_warm, d_warm) = time(20, || {
        cache_key::content_digest(&dir, &selected, Some(&mut cache)).expect("digest")
    });
    assert_eq!(d_warm, d_cold);
    println!("digest filling stat cache: {t_fill:?} (save {t_save:?}, load {t_load:?})");
    println!("digest with stat cache: {t_warm:?}");

    // Nothing changed: walk + digest with the cache, end to end.
    let (t_noop, _) = time(20, || {
        let entries = context::walk(&dir, &matcher).expect("walk");
        let sel = cache_key::select_sources(&entries, &["src/".to_string()]).expect("select");
        cache_key::content_digest(&dir, &sel, Some(&mut cache)).expect("digest")
    });
    println!("nothing changed (walk + select + digest, stat cache): {t_noop:?}");

    // One file changed.
    let changed = dir.join("src/m3/f3.txt");
    let original = std::fs::read(&changed).expect("read");
    let mut modified = original.clone();
    modified.extend_from_slice(b"one more line\n");
    std::fs::write(&changed, &modified).expect("write");
    let t = Instant::now();
    let entries2 = context::walk(&dir, &matcher).expect("walk");
    let sel2 = cache_key::select_sources(&entries2, &["src/".to_string()]).expect("select");
    let d_changed = cache_key::content_digest(&dir, &sel2, Some(&mut cache)).expect("digest");
    let t_changed = t.elapsed();
    std::fs::write(&changed, &original).expect("restore");
    assert_ne!(d_changed, d_cold);
    println!("one file changed (walk + select + digest, stat cache): {t_changed:?}");

    // Step keys for the whole file.
    let build = BuildArgs::new(BTreeMap::new());
    let t = Instant::now();
    let plan = graph::plan(&df, None, &build).expect("plan");
    let global = GlobalScope::new(&df, &build).expect("global");
    let lex = Lex::new(df.directives.escape);
    let stage = &df.stages[plan.target];
    let mut scope = StageScope::new(&["PATH=/usr/local/bin:/usr/bin:/bin".into()], &build);
    let mut key = cache_key::base_key("sha256:debian-image-digest", &build.target.to_string());
    for ins in &stage.instructions {
        let ex = expand::expand(ins, &scope.expansion_env(), &lex).expect("expand");
        let sources = match &ex.kind {
            InstructionKind::Copy(c) | InstructionKind::Add(c) => {
                let paths: Vec<String> = c
                    .sources
                    .iter()
                    .filter_map(|s| match s {
                        CopySource::Path(p) => Some(p.clone()),
                        CopySource::Inline(_) => None,
                    })
                    .collect();
                let sel = cache_key::select_sources(&entries, &paths).expect("select");
                Some(cache_key::content_digest(&dir, &sel, Some(&mut cache)).expect("digest"))
            }
            _ => None,
        };
        match &ex.kind {
            InstructionKind::Env(kv) => {
                for p in &kv.pairs {
                    scope.set_env(&p.key, &p.value);
                }
            }
            InstructionKind::Arg(decls) => {
                for d in decls {
                    scope.declare(d, &global, &build, &lex).expect("arg");
                }
            }
            _ => {}
        }
        key = cache_key::step_key(&key, &ex.kind, &scope.args_in_scope(), sources.as_ref());
        println!(
            "  line {:>2} {:<10} {}",
            ins.line,
            ins.kind.name(),
            &key.to_hex()[..16]
        );
    }
    println!("plan + expand + 6 step keys: {:?}", t.elapsed());
    let _ = std::fs::remove_file(&cache_path);
}
