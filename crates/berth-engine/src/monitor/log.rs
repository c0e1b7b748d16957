//! The json-file log driver: one JSON object per line of output, as Docker writes
//! `<id>-json.log`: `{"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:00.123456789Z"}`.
//!
//! Lines are split at `\n`; a line without one is held until the rest arrives, until it grows
//! past 16 KiB (Docker's partial-message size) or until the stream ends.

use std::fs::File;
use std::io::{self, Write};

/// Docker splits longer lines into partial messages.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 0,
    Stderr = 1,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

pub struct JsonLog {
    file: File,
    partial: [Vec<u8>; 2],
    out: Vec<u8>,
}

impl JsonLog {
    pub fn new(file: File) -> JsonLog {
        JsonLog {
            file,
            partial: [Vec::new(), Vec::new()],
            out: Vec::new(),
        }
    }

    /// Logs `data` read from `stream`.
    pub fn write(&mut self, stream: Stream, mut data: &[u8]) -> io::Result<()> {
        let time = timestamp();
        let idx = stream as usize;
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    let mut line = std::mem::take(&mut self.partial[idx]);
                    line.extend_from_slice(&data[..=nl]);
                    self.entry(stream, &line, &time);
                    data = &data[nl + 1..];
                }
                None => {
                    self.partial[idx].extend_from_slice(data);
                    if self.partial[idx].len() >= MAX_LINE {
                        let line = std::mem::take(&mut self.partial[idx]);
                        self.entry(stream, &line, &time);
                    }
                    break;
                }
            }
        }
        self.flush_out()
    }

    /// Writes out what is held of unterminated lines (the stream ended).
    pub fn finish(&mut self) -> io::Result<()> {
        let time = timestamp();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut self.partial[stream as usize]);
            if !line.is_empty() {
                self.entry(stream, &line, &time);
            }
        }
        self.flush_out()?;
        self.out = Vec::new();
        self.partial = [Vec::new(), Vec::new()];
        Ok(())
    }

    fn flush_out(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.file.write_all(&self.out)?;
            self.out.clear();
            if self.out.capacity() > 64 * 1024 {
                self.out.shrink_to(4096);
            }
        }
        Ok(())
    }

    fn entry(&mut self, stream: Stream, line: &[u8], time: &str) {
        self.out.extend_from_slice(b"{\"log\":\"");
        escape_into(&mut self.out, line);
        self.out.extend_from_slice(b"\",\"stream\":\"");
        self.out.extend_from_slice(stream.name().as_bytes());
        self.out.extend_from_slice(b"\",\"time\":\"");
        self.out.extend_from_slice(time.as_bytes());
        self.out.extend_from_slice(b"\"}\n");
    }
}

/// Go's `time.RFC3339Nano` in UTC: nanoseconds with trailing zeros trimmed.
pub fn timestamp() -> String {
    let now = chrono::Utc::now();
    let mut s = now.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = now.timestamp_subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// JSON string escaping as Go's encoder does it (HTML-safe `<`, `>`, `&`; invalid UTF-8
/// becomes U+FFFD).
fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_partials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = JsonLog::new(File::create(&path).unwrap());
        log.write(Stream::Stdout, b"a\nb").unwrap();
        log.write(Stream::Stderr, b"<e>\n").unwrap();
        log.write(Stream::Stdout, b"c\n\"q\"").unwrap();
        log.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["log"], "a\n");
        assert_eq!(lines[1]["log"], "<e>\n");
        assert!(text.contains("\\u003ce\\u003e"));
        assert_eq!(lines[1]["stream"], "stderr");
        assert_eq!(lines[2]["log"], "bc\n");
        assert_eq!(lines[3]["log"], "\"q\"");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
