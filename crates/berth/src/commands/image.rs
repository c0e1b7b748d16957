//! `images`, `tag`, `rmi`, `history`, `import`, `image inspect`, `image prune`, `save`, `load`.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_engine::image::{ImageFilter, ImportOptions, ImportSource, LoadedImage};
use berth_engine::Engine;
use berth_image::store::RemovedImage;
use serde_json::{json, Value};

use crate::cli::{
    HistoryArgs, ImageInspectArgs, ImagePruneArgs, ImagesArgs, ImportArgs, LoadArgs, RmiArgs,
    SaveArgs, TagArgs,
};
use crate::output::units::{human_size, since};
use crate::output::{print_json_array, Listing, Template};

fn image_header(field: &str) -> Option<&'static str> {
    Some(match field {
        "ID" => "IMAGE ID",
        "Repository" => "REPOSITORY",
        "Tag" => "TAG",
        "Digest" => "DIGEST",
        "CreatedSince" => "CREATED",
        "CreatedAt" => "CREATED AT",
        "Size" => "SIZE",
        "CreatedBy" => "CREATED BY",
        "Comment" => "COMMENT",
        _ => return None,
    })
}

fn short_id(id: &berth_image::Digest, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.short().to_string()
    }
}

fn created_at(timestamp: i64) -> String {
    chrono::DateTime::from_timestamp(timestamp, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

pub fn images(engine: &Engine, args: ImagesArgs) -> Result<ExitCode> {
    let filter = ImageFilter::parse(&args.filter, args.all, args.reference.as_deref())?;
    let rows = engine.list_images(&filter)?;
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        let mut out = BufWriter::new(std::io::stdout().lock());
        for row in &rows {
            if seen.insert(row.id.clone()) {
                writeln!(out, "{}", short_id(&row.id, args.no_trunc))?;
            }
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut columns = vec![("REPOSITORY", "Repository"), ("TAG", "Tag")];
    if args.digests {
        columns.push(("DIGEST", "Digest"));
    }
    columns.extend([
        ("IMAGE ID", "ID"),
        ("CREATED", "CreatedSince"),
        ("SIZE", "Size"),
    ]);
    let listing = Listing::new(args.format.as_deref(), columns, image_header)?;
    let values: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "Containers": "N/A",
                "CreatedAt": created_at(row.created),
                "CreatedSince": since(row.created),
                "Digest": row.digest,
                "ID": short_id(&row.id, args.no_trunc),
                "Repository": row.repository,
                "SharedSize": "N/A",
                "Size": human_size(row.size),
                "Tag": row.tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(row.size),
            })
        })
        .collect();
    listing.print(&values)?;
    Ok(ExitCode::SUCCESS)
}

pub fn tag(engine: &Engine, args: TagArgs) -> Result<ExitCode> {
    engine.tag_image(&args.source, &args.target)?;
    Ok(ExitCode::SUCCESS)
}

pub fn rmi(engine: &Engine, args: RmiArgs) -> Result<ExitCode> {
    super::each_reported(&args.images, |name| {
        for record in engine.remove_image(name, args.force)? {
            match record {
                RemovedImage::Untagged(name) => println!("Untagged: {name}"),
                RemovedImage::Deleted(id) => println!("Deleted: {id}"),
            }
        }
        Ok::<(), berth_engine::EngineError>(())
    })
}

pub fn history(engine: &Engine, args: HistoryArgs) -> Result<ExitCode> {
    let rows = engine.image_history(&args.image)?;
    let id_text = |id: &Option<berth_image::Digest>| match id {
        Some(id) => short_id(id, args.no_trunc),
        None => "<missing>".into(),
    };
    if args.quiet {
        for row in &rows {
            println!("{}", id_text(&row.id));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let columns = vec![
        ("IMAGE", "ID"),
        ("CREATED", "CreatedSince"),
        ("CREATED BY", "CreatedBy"),
        ("SIZE", "Size"),
        ("COMMENT", "Comment"),
    ];
    let listing = Listing::new(args.format.as_deref(), columns, |f| match f {
        "ID" => Some("IMAGE"),
        other => image_header(other),
    })?;
    let values: Vec<Value> = rows
        .iter()
        .map(|row| {
            let created_by = if args.no_trunc || row.created_by.chars().count() <= 45 {
                row.created_by.clone()
            } else {
                let cut: String = row.created_by.chars().take(44).collect();
                format!("{cut}…")
            };
            let (created_since, size) = if args.human {
                (since(row.created), human_size(row.size))
            } else {
                (
                    chrono::DateTime::from_timestamp(row.created, 0)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default(),
                    row.size.to_string(),
                )
            };
            json!({
                "Comment": row.comment,
                "CreatedAt": created_at(row.created),
                "CreatedBy": created_by,
                "CreatedSince": created_since,
                "ID": id_text(&row.id),
                "Size": size,
            })
        })
        .collect();
    listing.print(&values)?;
    Ok(ExitCode::SUCCESS)
}

pub fn import(engine: &Engine, args: ImportArgs) -> Result<ExitCode> {
    let source = ImportSource::parse(&args.source);
    if matches!(source, ImportSource::Stdin) && std::io::stdin().is_terminal() {
        bail!("import from STDIN needs a tarball piped in");
    }
    let options = ImportOptions {
        changes: args.change,
        message: args.message,
        platform: args.platform,
        reference: args.reference,
    };
    let id = engine.import(source, &options)?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(engine: &Engine, args: ImageInspectArgs) -> Result<ExitCode> {
    print_inspected(&args.images, args.format.as_deref(), |name| {
        engine.inspect_image(name).map_err(anyhow::Error::from)
    })
}

/// Prints inspect documents as a JSON array or through a template; names that fail are
/// reported and make the exit status 1, as with Docker.
pub fn print_inspected(
    names: &[String],
    format: Option<&str>,
    inspect: impl Fn(&str) -> Result<Value>,
) -> Result<ExitCode> {
    let template = match format {
        None | Some("json") => None,
        Some(f) => Some(Template::parse(f)?),
    };
    let mut docs = Vec::new();
    let mut failed = false;
    for name in names {
        match inspect(name) {
            Ok(doc) => docs.push(doc),
            Err(err) => {
                eprintln!("Error: {err:#}");
                failed = true;
            }
        }
    }
    match template {
        None => print_json_array(&docs)?,
        Some(template) => {
            for doc in &docs {
                println!("{}", template.render(doc)?);
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn prune(engine: &Engine, args: ImagePruneArgs) -> Result<ExitCode> {
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !confirm(warning)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let mut labels = Vec::new();
    for f in &args.filter {
        match f.split_once('=') {
            Some(("label", value)) => labels.push(match value.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (value.to_string(), None),
            }),
            _ => bail!("invalid filter '{f}'"),
        }
    }
    let report = engine.prune_images(args.all, &labels, None)?;
    if !report.removed.is_empty() {
        println!("Deleted Images:");
        for record in &report.removed {
            match record {
                RemovedImage::Untagged(name) => println!("untagged: {name}"),
                RemovedImage::Deleted(id) => println!("deleted: {id}"),
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(report.reclaimed));
    Ok(ExitCode::SUCCESS)
}

/// Docker's "Are you sure you want to continue? [y/N]" prompt; no terminal means no.
pub fn confirm(warning: &str) -> Result<bool> {
    eprintln!("{warning}");
    eprint!("Are you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
}

pub fn save(engine: &Engine, args: SaveArgs) -> Result<ExitCode> {
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed, so a failed save leaves no partial file.
            let tmp = path.with_extension("berth-partial");
            let file = File::create(&tmp)
                .with_context(|| format!("failed to create {}", tmp.display()))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let result = engine
                .save_images(&args.images, &mut out)
                .map_err(anyhow::Error::from);
            let result = result.and_then(|()| out.flush().map_err(anyhow::Error::from));
            if let Err(err) = result {
                let _ = std::fs::remove_file(&tmp);
                return Err(err);
            }
            std::fs::rename(&tmp, path)
                .with_context(|| format!("failed to rename {} into place", path.display()))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            engine.save_images(&args.images, &mut out)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn load(engine: &Engine, args: LoadArgs) -> Result<ExitCode> {
    let loaded = match &args.input {
        Some(path) => {
            let file =
                File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
            engine.load_images(file)?
        }
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            engine.load_images(std::io::stdin().lock())?
        }
    };
    if !args.quiet {
        for image in loaded {
            match image {
                LoadedImage::Tagged(name) => println!("Loaded image: {name}"),
                LoadedImage::Untagged(id) => println!("Loaded image ID: {id}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
