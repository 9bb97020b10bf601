//! Progress for long steps: a spinner with elapsed time on a terminal, plain
//! start/finish lines otherwise (CI logs).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Step {
    bar: Option<ProgressBar>,
    what: String,
    started: Instant,
}

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
        }
    }

    /// Show the latest line of a long-running tool's output next to the step.
    pub fn detail(&self, line: &str) {
        if let Some(bar) = &self.bar {
            let line: String = line.chars().take(60).collect();
            bar.set_message(format!("{}: {}", self.what, line));
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
