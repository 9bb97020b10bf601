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
//! [`run_live`] (a trace that grows while it is shown: `hv-trace view --live`),
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
pub use index::{LiveIndex, TraceIndex};

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

/// A trace that grows while it is shown (a recording streaming in).
pub trait LiveSource: Send + 'static {
    /// The index of the trace so far when something arrived since the last
    /// call (None: nothing new). Called on a thread of its own, once a
    /// refresh; [`index::LiveIndex`] builds it without re-reading the past.
    fn refresh(&mut self) -> anyhow::Result<Option<TraceIndex>>;
    /// One line on what arrived (bytes, events, drops, rate).
    fn status(&self) -> String;
    /// No more data will come (the last snapshot is the whole trace).
    fn ended(&self) -> bool;
}

/// How often a live view looks for new data (at least; a slow refresh
/// makes it wait twice as long as the last one took).
pub const LIVE_REFRESH: Duration = Duration::from_millis(500);

/// What the refresher sends the screen.
struct LiveUpdate {
    index: Option<anyhow::Result<TraceIndex>>,
    status: String,
    ended: bool,
}

/// Shows `source`'s trace while it grows, following the newest events
/// until the user scrolls away (`f` or End follows again), until the user
/// quits; gives the source back.
pub fn run_live<S: LiveSource>(source: S) -> anyhow::Result<S> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel::<LiveUpdate>();
    let refresher = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("live-refresh".into())
            .spawn(move || {
                let mut source = source;
                while !stop.load(Ordering::Acquire) {
                    let began = std::time::Instant::now();
                    let ended = source.ended();
                    let index = source.refresh().transpose();
                    let failed = index.as_ref().is_some_and(|i| i.is_err());
                    let update = LiveUpdate {
                        index,
                        status: source.status(),
                        ended,
                    };
                    if tx.send(update).is_err() || ended || failed {
                        break;
                    }
                    let wait = LIVE_REFRESH.max(began.elapsed() * 2);
                    let until = began + wait;
                    while !stop.load(Ordering::Acquire) && std::time::Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                source
            })
            .context("cannot start the live view's refresher")?
    };
    let mut app = App::new(Arc::new(TraceIndex::empty()));
    app.color = color_wanted();
    app.live = Some(app::Live::new());
    app.message = "waiting for the first events".into();
    let shown = run_live_terminal(&mut app, &rx);
    stop.store(true, Ordering::Release);
    let source = refresher
        .join()
        .map_err(|_| anyhow::anyhow!("the live view's refresher failed"))?;
    shown?;
    Ok(source)
}

/// Applies what the refresher sent: the newest index, the status.
fn apply_updates(app: &mut App, updates: &std::sync::mpsc::Receiver<LiveUpdate>) {
    while let Ok(u) = updates.try_recv() {
        match u.index {
            Some(Ok(index)) => {
                if app.message == "waiting for the first events" {
                    app.message.clear();
                }
                app.grow(index);
            }
            Some(Err(e)) => app.message = format!("cannot read the trace so far: {e:#}"),
            None => {}
        }
        if let Some(live) = &mut app.live {
            live.status = u.status;
            live.ended = u.ended;
        }
    }
}

fn run_live_terminal(app: &mut App, updates: &std::sync::mpsc::Receiver<LiveUpdate>) -> anyhow::Result<()> {
    drive(app, |app| {
        apply_updates(app, updates);
        Ok(Some(Duration::from_millis(100)))
    })
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
    drive(app, |app| {
        if let Some(l) = loader {
            if l.finished() {
                app.swap_index(|| l.wait())?;
                loader = None;
            } else {
                app.loading = Some(l.events_so_far());
            }
        }
        // While indexing, wake up now and then to pick up the whole index.
        Ok(loader.is_some().then_some(Duration::from_millis(200)))
    })
}

/// The terminal's draw/event loop: `tick` runs before each draw and says
/// how long to wait for input before drawing again (None: until input).
fn drive(app: &mut App, mut tick: impl FnMut(&mut App) -> anyhow::Result<Option<Duration>>) -> anyhow::Result<()> {
    enable_raw_mode().context("cannot use the terminal (raw mode)")?;
    let _guard = TerminalGuard;
    execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture).context("cannot set up the terminal")?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    term.clear()?;
    while !app.quit {
        let wake = tick(app)?;
        let size = term.size()?;
        app.size = (size.width, size.height);
        term.draw(|f| ui::draw(f, app))?;
        if let Some(wait) = wake {
            if !event::poll(wait)? {
                continue;
            }
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
