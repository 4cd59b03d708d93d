//! Progress for long work: an indicatif bar on a terminal, plain log lines (to stderr, at most
//! every few seconds) when the output is a file or a CI log.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often the plain fallback writes a line.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// A unit of progress reporting.
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    last_log: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Progress over `total` units of `label` work.
    pub fn new(label: &str, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            // An unknown total (0) gets a counter without a bar or ETA.
            let (bar, template) = if total > 0 {
                (
                    ProgressBar::new(total),
                    "{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
                )
            } else {
                (
                    ProgressBar::no_length(),
                    "{prefix:>12} {spinner} {pos} done, {per_sec}, {elapsed} {msg}",
                )
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar
        });
        Progress {
            label: label.to_string(),
            total,
            done: 0,
            started: Instant::now(),
            last_log: Instant::now(),
            bar,
        }
    }

    /// Adds `n` finished units.
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None if self.last_log.elapsed() >= LOG_EVERY => {
                self.last_log = Instant::now();
                eprintln!("{}", self.line());
            }
            None => {}
        }
    }

    /// Shows a short status message (loss, rate, …) beside the bar or in the next log line.
    pub fn message(&mut self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg.to_string());
        } else {
            self.label = match self.label.split_once(" | ") {
                Some((base, _)) => format!("{base} | {msg}"),
                None => format!("{} | {msg}", self.label),
            };
        }
    }

    /// Ends the bar (or writes the last log line).
    pub fn finish(self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!("{}", self.line()),
        }
    }

    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        if self.total == 0 {
            return format!(
                "[{}] {} done, {rate:.2}/s, {secs:.0}s elapsed",
                self.label, self.done
            );
        }
        let pct = if self.total > 0 {
            100.0 * self.done as f64 / self.total as f64
        } else {
            100.0
        };
        let eta = if rate > 0.0 {
            (self.total.saturating_sub(self.done)) as f64 / rate
        } else {
            0.0
        };
        format!(
            "[{}] {}/{} ({pct:.0}%) {rate:.1}/s, {secs:.0}s elapsed, eta {eta:.0}s",
            self.label, self.done, self.total
        )
    }
}
