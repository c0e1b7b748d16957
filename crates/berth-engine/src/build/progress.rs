//! Build progress in BuildKit's plain form (`#N [stage i/n] RUN …`, output lines prefixed with
//! `#N <seconds>`, `#N DONE 0.3s` or `#N CACHED`), written to stderr; quiet mode keeps a step's
//! output and shows it only if the step fails.

use std::io::Write;
use std::time::Instant;

/// How much to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Plain,
    Quiet,
}

/// The progress printer of one build.
pub struct Progress {
    mode: ProgressMode,
    next: usize,
    current: Option<(usize, Instant)>,
    captured: Vec<u8>,
}

impl Progress {
    pub fn new(mode: ProgressMode) -> Progress {
        Progress {
            mode,
            next: 1,
            current: None,
            captured: Vec::new(),
        }
    }

    fn emit(&self, text: &str) {
        if self.mode == ProgressMode::Plain {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }

    /// Starts a numbered step.
    pub fn start(&mut self, label: &str) -> usize {
        let n = self.next;
        self.next += 1;
        self.current = Some((n, Instant::now()));
        self.captured.clear();
        self.emit(&format!("#{n} {label}\n"));
        n
    }

    /// A line of a step's output (RUN's stdout/stderr).
    pub fn output(&mut self, line: &[u8]) {
        let Some((n, t)) = self.current else { return };
        let text = format!(
            "#{n} {:.3} {}\n",
            t.elapsed().as_secs_f64(),
            String::from_utf8_lossy(line).trim_end_matches('\n')
        );
        self.captured.extend_from_slice(text.as_bytes());
        self.emit(&text);
    }

    /// A free-form note under the current step.
    pub fn note(&mut self, text: &str) {
        if let Some((n, _)) = self.current {
            self.emit(&format!("#{n} {text}\n"));
        }
    }

    /// The current step was answered from the cache.
    pub fn cached(&mut self) {
        if let Some((n, _)) = self.current.take() {
            self.emit(&format!("#{n} CACHED\n\n"));
        }
    }

    /// The current step finished.
    pub fn done(&mut self) {
        if let Some((n, t)) = self.current.take() {
            self.emit(&format!("#{n} DONE {:.1}s\n\n", t.elapsed().as_secs_f64()));
        }
    }

    /// The current step failed: in quiet mode its output is shown now.
    pub fn error(&mut self, message: &str) {
        if let Some((n, _)) = self.current.take() {
            let mut err = std::io::stderr().lock();
            if self.mode == ProgressMode::Quiet {
                let _ = err.write_all(&self.captured);
            }
            let _ = writeln!(err, "#{n} ERROR: {message}");
        }
    }
}
