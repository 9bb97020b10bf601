//! Progress for long steps: a spinner with elapsed time on a terminal, plain
//! start/finish lines otherwise (CI logs).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Step {
    bar: Option<ProgressBar>,
    what: String,
    started: Instant,
    /// Without a terminal: when the last detail line was printed.
    last_plain: std::cell::Cell<Instant>,
}

/// Without a terminal, a long step's detail is printed at most this often.
const PLAIN_EVERY: Duration = Duration::from_secs(30);

impl Step {
    pub fn start(what: impl Into<String>) -> Self {
        let what = what.into();
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("static template"));
            bar.set_message(what.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            eprintln!("[hv-trace] {what} ...");
            None
        };
        Step {
            bar,
            what,
            started: Instant::now(),
            last_plain: std::cell::Cell::new(Instant::now()),
        }
    }

    /// Show the latest line of a long-running tool's output (or a
    /// recording's figures) next to the step: in place on a terminal, as a
    /// plain line every 30 s in a log.
    pub fn detail(&self, line: &str) {
        match &self.bar {
            Some(bar) => {
                let line: String = line.chars().take(100).collect();
                bar.set_message(format!("{}: {}", self.what, line));
            }
            None if self.last_plain.get().elapsed() >= PLAIN_EVERY => {
                eprintln!("[hv-trace] {}: {line}", self.what);
                self.last_plain.set(Instant::now());
            }
            None => {}
        }
    }

    pub fn finish(self, result: &str) {
        let msg = format!(
            "{} {} ({:.1} s)",
            self.what,
            result,
            self.started.elapsed().as_secs_f64()
        );
        match self.bar {
            Some(bar) => bar.finish_with_message(msg),
            None => eprintln!("[hv-trace] {msg}"),
        }
    }
}
