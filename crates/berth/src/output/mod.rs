//! Everything the CLI prints for scripts and people: tables, `--format` templates and units.

pub mod template;
pub mod units;

use std::io::Write;

use serde_json::Value;

pub use template::Template;

/// How a listing command prints its rows, chosen once from `--format` and `-q`.
pub enum Listing {
    /// Docker's default table with the given headers and one template per column.
    Table {
        columns: Vec<(&'static str, &'static str)>,
    },
    /// A user template; `table` prefix means a header row is printed first.
    Template {
        template: Template,
        headers: Option<Vec<String>>,
    },
    /// One JSON object per line (`--format json`).
    Json,
}

impl Listing {
    /// Chooses the listing for `--format` (None = default table).
    /// `header_of` names the column header for a field like `.ID` in a `table` template.
    pub fn new(
        format: Option<&str>,
        columns: Vec<(&'static str, &'static str)>,
        header_of: fn(&str) -> Option<&'static str>,
    ) -> anyhow::Result<Listing> {
        let Some(format) = format.filter(|f| !f.is_empty() && *f != "table") else {
            return Ok(Listing::Table { columns });
        };
        if format == "json" {
            return Ok(Listing::Json);
        }
        if let Some(body) = format.strip_prefix("table") {
            let body = body.trim_start();
            let template = Template::parse(body)?;
            let headers = template.header_row(header_of);
            return Ok(Listing::Template {
                template,
                headers: Some(headers),
            });
        }
        Ok(Listing::Template {
            template: Template::parse(format)?,
            headers: None,
        })
    }

    /// Prints `rows` (each a JSON object with Docker's field names).
    pub fn print(&self, rows: &[Value]) -> anyhow::Result<()> {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        match self {
            Listing::Json => {
                for row in rows {
                    serde_json::to_writer(&mut out, row)?;
                    out.write_all(b"\n")?;
                }
            }
            Listing::Table { columns } => {
                let mut cells: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
                cells.push(columns.iter().map(|(h, _)| h.to_string()).collect());
                for row in rows {
                    cells.push(
                        columns
                            .iter()
                            .map(|(_, field)| field_text(row, field))
                            .collect(),
                    );
                }
                write_aligned(&mut out, &cells)?;
            }
            Listing::Template { template, headers } => {
                let mut lines: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
                if let Some(headers) = headers {
                    lines.push(headers.clone());
                }
                for row in rows {
                    let text = template.render(row)?;
                    lines.push(text.split('\t').map(str::to_string).collect());
                }
                if headers.is_some() {
                    write_aligned(&mut out, &lines)?;
                } else {
                    for line in lines {
                        writeln!(out, "{}", line.join("\t"))?;
                    }
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// The text of a top-level field, as a table cell.
fn field_text(row: &Value, field: &str) -> String {
    match row.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Writes rows as columns padded like Go's tabwriter with the Docker CLI's settings
/// (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`): a column is its widest cell plus 3,
/// and at least 10.
fn write_aligned(out: &mut impl Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = (widths[i] + 3).max(10) - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Prints a JSON document the way `docker inspect` does: an indented array.
pub fn print_json_array(items: &[Value]) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let text = serde_json::to_string_pretty(&Value::Array(items.to_vec()))?;
    // Docker indents with 4 spaces.
    let text = reindent(&text);
    writeln!(out, "{text}")?;
    Ok(())
}

fn reindent(two_space: &str) -> String {
    let mut out = String::with_capacity(two_space.len() * 2);
    for line in two_space.lines() {
        let spaces = line.len() - line.trim_start_matches(' ').len();
        out.extend(std::iter::repeat_n(' ', spaces * 2));
        out.push_str(&line[spaces..]);
        out.push('\n');
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::write_aligned;

    fn aligned(rows: &[&[&str]]) -> String {
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        let mut out = Vec::new();
        write_aligned(&mut out, &rows).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn narrow_columns_are_ten_wide_like_dockers_tabwriter() {
        assert_eq!(
            aligned(&[&["DRIVER", "VOLUME NAME"], &["local", "data"]]),
            "DRIVER    VOLUME NAME\nlocal     data\n"
        );
    }

    #[test]
    fn wide_columns_get_three_spaces_after_the_widest_cell() {
        assert_eq!(
            aligned(&[&["REPOSITORY", "TAG"], &["localhost:5000/app", "v1"]]),
            "REPOSITORY           TAG\nlocalhost:5000/app   v1\n"
        );
    }
}
