//! hv-trace's terminal timeline viewer for unified Linux + RTOS traces.
//!
//! Design principles:
//! - Domain work ([`index`], [`runs`]) knows nothing about terminals: a trace is decoded once
//!   through `trace-convert` into compact per-CPU run intervals with prefix sums and block
//!   summaries, so any zoom level draws in O(columns × log runs).
//! - The UI is an [`app::App`] state, key/mouse handlers that only change it, and
//!   [`ui::draw`], a pure function of the state (rendering tests use ratatui's `TestBackend`).
//! - Errors (a missing or corrupt file) are returned, printed as `what: why`, never a panic.
//!
//! Entry points: [`run_app`] (what `hv-trace view FILE` and the `hv-trace-view` binary call),
//! [`index::TraceIndex::open`] for the index alone.

#![forbid(unsafe_op_in_unsafe_fn)]

pub mod app;
pub mod fixture;
pub mod index;
pub mod layout;
pub mod runs;
pub mod ui;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

pub use app::App;
pub use index::TraceIndex;

/// Is color wanted? False when `NO_COLOR` is set to a non-empty value (no-color.org).
pub fn color_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Opens `path`, indexes it, and runs the interactive viewer on the terminal until the user
/// quits. The file is read (and any error reported) before the terminal is touched.
///
/// ```no_run
/// viewer::run_app(std::path::Path::new("merged.dat"))?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn run_app(path: &Path) -> anyhow::Result<()> {
    let loader = index::Loader::start(path)?;
    let (index, partial) = match loader.first(FIRST_FRAME_BUDGET)? {
        index::Loaded::Full(i) => (i, false),
        index::Loaded::Partial(i) => (i, true),
    };
    if !partial && index.events == 0 {
        anyhow::bail!("{}: the trace has no events", path.display());
    }
    let mut app = App::new(Arc::new(index));
    app.color = color_wanted();
    if partial {
        app.loading = Some(loader.events_so_far());
    }
    run_terminal(&mut app, partial.then_some(&loader))
}

/// How long opening waits for the whole index before showing what is indexed so far.
pub const FIRST_FRAME_BUDGET: Duration = Duration::from_millis(1200);

struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = disable_raw_mode();
        let mut out = std::io::stdout();
        let _ = execute!(out, DisableMouseCapture, LeaveAlternateScreen);
        let _ = out.flush();
    }
}

/// Runs the draw/event loop for `app` on standard output; with `loader`, swaps in the whole
/// index when it is ready.
pub fn run_terminal(app: &mut App, mut loader: Option<&index::Loader>) -> anyhow::Result<()> {
    enable_raw_mode().context("cannot use the terminal (raw mode)")?;
    let _guard = TerminalGuard;
    execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture).context("cannot set up the terminal")?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    term.clear()?;
    while !app.quit {
        if let Some(l) = loader {
            if l.finished() {
                app.swap_index(|| l.wait())?;
                loader = None;
            } else {
                app.loading = Some(l.events_so_far());
            }
        }
        let size = term.size()?;
        app.size = (size.width, size.height);
        term.draw(|f| ui::draw(f, app))?;
        // While indexing, wake up now and then to pick up the whole index.
        if loader.is_some() && !event::poll(Duration::from_millis(200))? {
            continue;
        }
        // Block for the first event, then drain whatever else is queued before redrawing.
        let mut ev = Some(event::read()?);
        while let Some(e) = ev.take() {
            match e {
                Event::Key(k) if k.kind != KeyEventKind::Release => app.on_key(k),
                Event::Mouse(m) => app.on_mouse(m),
                _ => {}
            }
            if app.quit {
                break;
            }
            if event::poll(Duration::from_millis(0))? {
                ev = Some(event::read()?);
            }
        }
    }
    Ok(())
}
