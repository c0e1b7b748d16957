//! `--format` templates: Go's text/template (through the `gtmpl` crate) with Docker's extra
//! functions (`json`, `join`, `upper`, `lower`, `title`, `split`, `truncate`, `pad`, `println`).

use std::collections::HashMap;

use gtmpl::{Context, FuncError, Value as GValue};
use serde_json::Value;

pub struct Template {
    inner: gtmpl::Template,
    source: String,
}

impl Template {
    pub fn parse(text: &str) -> anyhow::Result<Template> {
        // Docker lets users write `\t` and `\n` literally on the command line.
        let source = text.replace("\\t", "\t").replace("\\n", "\n");
        let mut inner = gtmpl::Template::default();
        inner.add_funcs(&[
            ("json", json as gtmpl::Func),
            ("join", join as gtmpl::Func),
            ("upper", upper as gtmpl::Func),
            ("lower", lower as gtmpl::Func),
            ("title", title as gtmpl::Func),
            ("split", split as gtmpl::Func),
            ("truncate", truncate as gtmpl::Func),
            ("pad", pad as gtmpl::Func),
            ("println", println as gtmpl::Func),
        ]);
        inner
            .parse(source.clone())
            .map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
        Ok(Template { inner, source })
    }

    pub fn render(&self, value: &Value) -> anyhow::Result<String> {
        self.inner
            .render(&Context::from(to_gtmpl(value)))
            .map_err(|e| anyhow::anyhow!("template: {e}"))
    }

    /// Header cells for a `table` template: each `{{.Field}}` becomes its column name.
    pub fn header_row(&self, header_of: fn(&str) -> Option<&'static str>) -> Vec<String> {
        self.source
            .split('\t')
            .map(|cell| {
                let mut out = String::new();
                let mut rest = cell;
                while let Some(start) = rest.find("{{") {
                    out.push_str(&rest[..start]);
                    let Some(end) = rest[start..].find("}}") else {
                        break;
                    };
                    let action = rest[start + 2..start + end].trim();
                    let field = action
                        .split_whitespace()
                        .find(|w| w.starts_with('.'))
                        .unwrap_or("");
                    let name = field.trim_start_matches('.');
                    out.push_str(
                        &header_of(name)
                            .map(str::to_string)
                            .unwrap_or_else(|| split_camel(name)),
                    );
                    rest = &rest[start + end + 2..];
                }
                out.push_str(rest);
                out
            })
            .collect()
    }
}

/// `CreatedSince` → `CREATED SINCE`, Docker's fallback header.
fn split_camel(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.char_indices() {
        if c.is_uppercase() && i > 0 && !name[..i].ends_with(|p: char| p.is_uppercase()) {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

pub fn to_gtmpl(value: &Value) -> GValue {
    match value {
        Value::Null => GValue::Nil,
        Value::Bool(b) => GValue::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                GValue::from(i)
            } else if let Some(u) = n.as_u64() {
                GValue::from(u)
            } else {
                GValue::from(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => GValue::String(s.clone()),
        Value::Array(items) => GValue::Array(items.iter().map(to_gtmpl).collect()),
        Value::Object(map) => GValue::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_gtmpl(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

fn to_json(value: &GValue) -> Value {
    match value {
        GValue::NoValue | GValue::Nil | GValue::Function(_) => Value::Null,
        GValue::Bool(b) => Value::Bool(*b),
        GValue::String(s) => Value::String(s.clone()),
        GValue::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .or_else(|| n.as_f64().map(Value::from))
            .unwrap_or(Value::Null),
        GValue::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        GValue::Object(map) | GValue::Map(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), to_json(&map[k])))
                    .collect(),
            )
        }
    }
}

fn text(value: &GValue) -> String {
    match value {
        GValue::String(s) => s.clone(),
        GValue::NoValue | GValue::Nil => String::new(),
        other => other.to_string(),
    }
}

fn arg<'a>(args: &'a [GValue], i: usize, name: &str, n: usize) -> Result<&'a GValue, FuncError> {
    args.get(i)
        .ok_or_else(|| FuncError::ExactlyXArgs(name.into(), n))
}

fn json(args: &[GValue]) -> Result<GValue, FuncError> {
    let v = to_json(arg(args, 0, "json", 1)?);
    Ok(GValue::String(
        serde_json::to_string(&v).unwrap_or_default(),
    ))
}

fn join(args: &[GValue]) -> Result<GValue, FuncError> {
    let sep = text(arg(args, 1, "join", 2)?);
    match arg(args, 0, "join", 2)? {
        GValue::Array(items) => Ok(GValue::String(
            items.iter().map(text).collect::<Vec<_>>().join(&sep),
        )),
        other => Ok(GValue::String(text(other))),
    }
}

fn upper(args: &[GValue]) -> Result<GValue, FuncError> {
    Ok(GValue::String(
        text(arg(args, 0, "upper", 1)?).to_uppercase(),
    ))
}

fn lower(args: &[GValue]) -> Result<GValue, FuncError> {
    Ok(GValue::String(
        text(arg(args, 0, "lower", 1)?).to_lowercase(),
    ))
}

fn title(args: &[GValue]) -> Result<GValue, FuncError> {
    let t = text(arg(args, 0, "title", 1)?);
    let mut c = t.chars();
    Ok(GValue::String(match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }))
}

fn split(args: &[GValue]) -> Result<GValue, FuncError> {
    let s = text(arg(args, 0, "split", 2)?);
    let sep = text(arg(args, 1, "split", 2)?);
    Ok(GValue::Array(
        s.split(sep.as_str())
            .map(|p| GValue::String(p.into()))
            .collect(),
    ))
}

fn truncate(args: &[GValue]) -> Result<GValue, FuncError> {
    let s = text(arg(args, 0, "truncate", 2)?);
    let n: usize = text(arg(args, 1, "truncate", 2)?)
        .parse()
        .unwrap_or(usize::MAX);
    Ok(GValue::String(s.chars().take(n).collect()))
}

fn pad(args: &[GValue]) -> Result<GValue, FuncError> {
    let s = text(arg(args, 0, "pad", 3)?);
    let left: usize = text(arg(args, 1, "pad", 3)?).parse().unwrap_or(0);
    let right: usize = text(arg(args, 2, "pad", 3)?).parse().unwrap_or(0);
    Ok(GValue::String(format!(
        "{}{s}{}",
        " ".repeat(left),
        " ".repeat(right)
    )))
}

fn println(args: &[GValue]) -> Result<GValue, FuncError> {
    Ok(GValue::String(format!(
        "{}\n",
        args.iter().map(text).collect::<Vec<_>>().join(" ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_fields_and_functions() {
        let row = json!({"Repository": "busybox", "Tag": "latest", "Labels": ["a", "b"]});
        let t = Template::parse("{{.Repository}}:{{.Tag}} {{join .Labels \",\"}} {{upper .Tag}}")
            .unwrap();
        assert_eq!(t.render(&row).unwrap(), "busybox:latest a,b LATEST");
        let t = Template::parse("{{json .Labels}}").unwrap();
        assert_eq!(t.render(&row).unwrap(), "[\"a\",\"b\"]");
    }

    #[test]
    fn table_headers() {
        let t = Template::parse("{{.ID}}\\t{{.CreatedSince}}").unwrap();
        let h = t.header_row(|f| if f == "ID" { Some("IMAGE ID") } else { None });
        assert_eq!(h, vec!["IMAGE ID", "CREATED SINCE"]);
    }

    #[test]
    fn bad_template_is_an_error() {
        assert!(Template::parse("{{.Foo").is_err());
    }
}
