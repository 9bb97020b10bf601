//! Viewer state and the handlers that change it. Nothing here draws; [`crate::ui::draw`]
//! renders an [`App`] as it is.

use std::collections::BTreeSet;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use crate::index::{EventRec, Os, TraceIndex};
use crate::layout::Geometry;

/// What the bottom panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// Events around the cursor.
    Events,
    /// Per-task statistics.
    Tasks,
    /// The RTOS's jobs: response times and deadline misses per task.
    Jobs,
}

/// The RTOS's jobs of the trace ([`trace_convert::timing`]), placed on its
/// timeline; made when the jobs panel is first shown.
#[derive(Debug)]
pub struct Jobs {
    /// Per task, by priority.
    pub tasks: Vec<trace_convert::timing::TaskTiming>,
    /// Each task's worst job (longest response): (from, to) ns.
    pub worst: Vec<Option<(u64, u64)>>,
    /// Every missed job: (from, to, task), by its end.
    pub misses: Vec<(u64, u64, String)>,
}

impl Jobs {
    /// The jobs of the trace at `path`.
    pub fn of_file(path: &str) -> Result<Jobs, String> {
        use trace_convert::timing::{Timing, TimingOptions};
        let trace = trace_convert::Trace::open(path).map_err(|e| e.to_string())?;
        let t = Timing::of_trace(&trace, &TimingOptions::default()).map_err(|e| e.to_string())?;
        let Some(clock) = t.clock else {
            return Err("no clock_sync events: RTOS jobs cannot be placed on the timeline".into());
        };
        let window = |j: &trace_convert::timing::Job| (clock.ns(j.release.unwrap_or(j.start)), clock.ns(j.end));
        let worst = t
            .tasks
            .iter()
            .map(|x| {
                t.jobs
                    .iter()
                    .filter(|j| j.task == x.name)
                    .max_by_key(|j| j.response_ns)
                    .map(window)
            })
            .collect();
        let mut misses: Vec<(u64, u64, String)> = t
            .jobs
            .iter()
            .filter(|j| j.missed)
            .map(|j| {
                let (a, b) = window(j);
                (a, b, j.task.clone())
            })
            .collect();
        misses.sort_by_key(|m| m.1);
        Ok(Jobs {
            tasks: t.tasks,
            worst,
            misses,
        })
    }
}

/// Where ↑/↓ go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// Row selection in the timeline.
    Timeline,
    /// The bottom panel.
    Panel,
}

/// What a line of text being typed is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// `/`: search by task or event name.
    Search,
    /// `g`: go to a time.
    Goto,
}

/// A timeline row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// Group title.
    Group(Os),
    /// A CPU (position in `index.cpus`): blocks line + marks line.
    Cpu(usize),
    /// A task (index in `index.tasks`).
    Task(u32),
}

impl Row {
    /// Lines the row takes on the timeline: a CPU has a blocks line and a
    /// marks line.
    pub fn lines(&self) -> u16 {
        match self {
            Row::Cpu(_) => 2,
            _ => 1,
        }
    }
}

/// The whole viewer state.
#[derive(Debug)]
pub struct App {
    /// The indexed trace.
    pub index: Arc<TraceIndex>,
    /// Window start (ns).
    pub view_start: u64,
    /// Window length (ns).
    pub view_span: u64,
    /// Cursor time (ns).
    pub cursor: u64,
    /// Terminal size (width, height), set before each draw.
    pub size: (u16, u16),
    /// Selected row (index into [`App::rows`], a CPU or task row).
    pub sel_row: usize,
    /// Marker A.
    pub marker_a: Option<u64>,
    /// Marker B.
    pub marker_b: Option<u64>,
    /// Only this OS, when set.
    pub os_filter: Option<Os>,
    /// CPUs hidden.
    pub hidden_cpus: BTreeSet<u32>,
    /// Event types hidden (by kind index).
    pub hidden_kinds: Vec<bool>,
    /// Only this task's events, and its blocks highlighted.
    pub task_filter: Option<u32>,
    /// Show a row per task.
    pub task_rows: bool,
    /// Bottom panel content.
    pub panel: Panel,
    /// Task statistics over the whole trace instead of the window.
    pub stats_whole: bool,
    /// Keyboard focus.
    pub focus: Focus,
    /// Selected line of the task table.
    pub task_sel: usize,
    /// Text being typed, and for what.
    pub prompt: Option<(Prompt, String)>,
    /// Last search.
    pub last_search: Option<String>,
    /// Help overlay shown.
    pub help: bool,
    /// Event-type filter menu shown, with its selected line.
    pub kind_menu: Option<usize>,
    /// One-line message (errors, search results).
    pub message: String,
    /// Set when the user quits.
    pub quit: bool,
    /// Colors allowed (false with `NO_COLOR`).
    pub color: bool,
    /// While the index is partial: events decoded so far.
    pub loading: Option<u64>,
    /// The RTOS's jobs, once the jobs panel was shown (or why there are none).
    pub jobs: Option<Result<Arc<Jobs>, String>>,
    /// Selected line of the jobs table.
    pub job_sel: usize,
    /// A live view: the trace grows while it is shown.
    pub live: Option<Live>,
}

/// The state of a live view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// The window follows the newest events.
    pub follow: bool,
    /// The window's length while following (ns); zooming changes it.
    pub window: u64,
    /// What the source says of itself (bytes, events, drops, rate).
    pub status: String,
    /// No more data will come.
    pub ended: bool,
}

impl Live {
    /// Following, with a 10-second window.
    pub fn new() -> Live {
        Live {
            follow: true,
            window: 10_000_000_000,
            status: String::new(),
            ended: false,
        }
    }
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

/// Formats a duration for humans: `1.250 ms`.
pub fn fmt_dur(ns: u64) -> String {
    let f = ns as f64;
    if ns >= 1_000_000_000 {
        format!("{:.3} s", f / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.3} ms", f / 1e6)
    } else if ns >= 1_000 {
        format!("{:.3} us", f / 1e3)
    } else {
        format!("{ns} ns")
    }
}

/// Formats a time stamp as trace-cmd does (seconds, microseconds).
pub fn fmt_ts(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000_000, (ns % 1_000_000_000) / 1000)
}

/// Parses a time typed by the user: `5.0123` (absolute seconds), `+12ms`, `12ms`, `300us`,
/// `42ns`, `1.5s`. A leading `+`, or an absolute value before the trace start, counts from the
/// start of the trace.
pub fn parse_time(s: &str, t0: u64) -> Option<u64> {
    let s = s.trim();
    let (rel, s) = match s.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (num, mult) = if let Some(n) = s.strip_suffix("ns") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e9)
    } else {
        (s, 1e9)
    };
    let v: f64 = num.trim().parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let ns = (v * mult).round() as u64;
    Some(if rel || ns < t0 { t0.saturating_add(ns) } else { ns })
}

impl App {
    /// The screen's layout on `area` for this state.
    pub fn geometry(&self, area: ratatui::layout::Rect) -> Geometry {
        let lines: Vec<u16> = self.rows().iter().map(Row::lines).collect();
        Geometry::new(area, &lines, self.sel_row)
    }

    /// The events listed in a panel of `lines` lines, and which one is at/after the cursor.
    pub fn event_lines(&self, lines: usize) -> (Vec<(usize, usize)>, usize) {
        let before = lines.saturating_sub(1) / 2;
        let f = |cpu: u32, e: &crate::index::EventRec| self.event_shown(cpu, e);
        let (mut v, mut at) = self.index.events_around(self.cursor, before, lines, &f);
        // Keep the window full when near the end.
        if v.len() > lines {
            let extra = v.len() - lines;
            let drop_front = extra.min(at.saturating_sub(before.min(at)));
            v.drain(..drop_front);
            at -= drop_front;
            v.truncate(lines);
        }
        (v, at)
    }

    /// A viewer on `index` showing the whole trace.
    pub fn new(index: Arc<TraceIndex>) -> App {
        let kinds = index.kinds.len();
        let span = index.span().max(1);
        let t0 = index.t0;
        let mut app = App {
            index,
            view_start: t0,
            view_span: span,
            cursor: t0,
            size: (80, 24),
            sel_row: 0,
            marker_a: None,
            marker_b: None,
            os_filter: None,
            hidden_cpus: BTreeSet::new(),
            hidden_kinds: vec![false; kinds],
            task_filter: None,
            task_rows: false,
            panel: Panel::Events,
            stats_whole: false,
            focus: Focus::Timeline,
            task_sel: 0,
            prompt: None,
            last_search: None,
            help: false,
            kind_menu: None,
            message: String::new(),
            quit: false,
            color: true,
            loading: None,
            live: None,
            jobs: None,
            job_sel: 0,
        };
        app.fix_selection();
        app
    }

    /// Replaces a partial index with the whole one that `build` makes, keeping the view (a
    /// view of the whole partial trace becomes a view of the whole trace). The partial index
    /// is freed before `build` runs, to keep peak memory down.
    pub fn swap_index(&mut self, build: impl FnOnce() -> anyhow::Result<TraceIndex>) -> anyhow::Result<()> {
        let whole = self.view_start == self.index.t0 && self.view_span >= self.index.span();
        self.index = Arc::new(TraceIndex::empty());
        let index = build()?;
        self.hidden_kinds.resize(index.kinds.len(), false);
        self.index = Arc::new(index);
        if whole {
            self.view_start = self.index.t0;
            self.view_span = self.index.span().max(1);
        }
        self.loading = None;
        self.clamp_view();
        self.fix_selection();
        Ok(())
    }

    /// A live view's next index: the window follows the newest events, or
    /// stays where the user put it.
    pub fn grow(&mut self, index: TraceIndex) {
        let _ = self.swap_index(|| Ok(index));
        if self.live.as_ref().is_some_and(|l| l.follow) {
            self.follow_end();
        }
    }

    /// Puts the window's end and the cursor at the newest event.
    pub fn follow_end(&mut self) {
        let window = self.live.as_ref().map_or(self.view_span, |l| l.window);
        self.view_span = window.min(self.index.span().max(1));
        self.view_start = self.index.t1.saturating_sub(self.view_span).max(self.index.t0);
        self.cursor = self.index.t1;
        self.clamp_view();
    }

    /// Is CPU position `c` shown under the current filters?
    pub fn cpu_shown(&self, c: usize) -> bool {
        let cpu = &self.index.cpus[c];
        !self.hidden_cpus.contains(&cpu.cpu) && self.os_filter.is_none_or(|o| o == cpu.os)
    }

    /// Is task `t` shown under the OS filter?
    pub fn task_shown(&self, t: u32) -> bool {
        let task = &self.index.tasks[t as usize];
        self.os_filter.is_none_or(|o| o == task.os)
    }

    /// Does the event filter (CPU, OS, event type, task) let `e` on `cpu` through?
    pub fn event_shown(&self, cpu: u32, e: &EventRec) -> bool {
        if self.hidden_kinds.get(e.kind as usize).copied().unwrap_or(false) {
            return false;
        }
        if self.hidden_cpus.contains(&cpu) {
            return false;
        }
        if let Some(os) = self.os_filter {
            if self.index.cpu(cpu).is_some_and(|c| c.os != os) {
                return false;
            }
        }
        if let Some(t) = self.task_filter {
            let switch = self.index.kinds[e.kind as usize].class == crate::index::KindClass::Switch;
            return e.task == t || (switch && e.aux == t);
        }
        true
    }

    /// Timeline rows in display order: per OS a title and its CPUs, then task rows if enabled.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for os in [Os::Linux, Os::Rtos] {
            let cpus: Vec<usize> = (0..self.index.cpus.len())
                .filter(|&c| self.index.cpus[c].os == os && self.cpu_shown(c))
                .collect();
            let tasks: Vec<u32> = if self.task_rows {
                let mut t: Vec<u32> = (0..self.index.tasks.len() as u32)
                    .filter(|&t| {
                        let task = &self.index.tasks[t as usize];
                        task.os == os
                            && !task.idle
                            && !self.index.task_runs[t as usize].is_empty()
                            && self.task_shown(t)
                            && self.task_filter.is_none_or(|f| f == t)
                    })
                    .collect();
                t.sort_by_key(|&t| self.index.tasks[t as usize].pid);
                t
            } else {
                Vec::new()
            };
            if cpus.is_empty() && tasks.is_empty() {
                continue;
            }
            rows.push(Row::Group(os));
            rows.extend(cpus.into_iter().map(Row::Cpu));
            rows.extend(tasks.into_iter().map(Row::Task));
        }
        rows
    }

    fn fix_selection(&mut self) {
        let rows = self.rows();
        if rows.is_empty() {
            self.sel_row = 0;
            return;
        }
        self.sel_row = self.sel_row.min(rows.len() - 1);
        if matches!(rows[self.sel_row], Row::Group(_)) {
            // Move to the next selectable row (or the previous one at the end).
            if let Some(k) = (self.sel_row..rows.len()).find(|&k| !matches!(rows[k], Row::Group(_))) {
                self.sel_row = k;
            } else if let Some(k) = (0..self.sel_row).rev().find(|&k| !matches!(rows[k], Row::Group(_))) {
                self.sel_row = k;
            }
        }
    }

    /// The selected row.
    pub fn selected(&self) -> Option<Row> {
        self.rows().get(self.sel_row).copied()
    }

    /// Timeline width in columns.
    pub fn timeline_width(&self) -> u16 {
        self.geometry(ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1))
            .timeline
            .width
            .max(1)
    }

    /// Time at the left edge of column `col` of the timeline.
    pub fn col_time(&self, col: u16) -> u64 {
        let w = self.timeline_width() as u128;
        self.view_start + (self.view_span as u128 * col as u128 / w) as u64
    }

    /// Column of time `t`, if inside the window.
    pub fn time_col(&self, t: u64) -> Option<u16> {
        if t < self.view_start || t >= self.view_start + self.view_span {
            return None;
        }
        let w = self.timeline_width() as u128;
        Some((((t - self.view_start) as u128 * w) / self.view_span as u128) as u16)
    }

    fn ns_per_col(&self) -> u64 {
        (self.view_span / self.timeline_width() as u64).max(1)
    }

    fn clamp_view(&mut self) {
        let (t0, t1) = (self.index.t0, self.index.t1);
        let total = (t1 - t0).max(1);
        let min_span = self.timeline_width() as u64;
        self.view_span = self.view_span.clamp(min_span.min(total), total);
        let max_start = t1.saturating_sub(self.view_span).max(t0);
        self.view_start = self.view_start.clamp(t0, max_start);
        self.cursor = self.cursor.clamp(t0, t1);
    }

    /// Puts the cursor at `t`, scrolling the window (keeping its length) if `t` is outside it.
    pub fn goto(&mut self, t: u64) {
        self.cursor = t.clamp(self.index.t0, self.index.t1);
        if self.cursor < self.view_start || self.cursor >= self.view_start + self.view_span {
            self.view_start = self.cursor.saturating_sub(self.view_span / 2);
        }
        self.clamp_view();
    }

    /// Zooms in (`factor` < 1) or out (> 1) keeping the cursor at the same column.
    pub fn zoom(&mut self, factor: f64) {
        let old = self.view_span as f64;
        let new = (old * factor).round().max(1.0) as u64;
        let total = self.index.span().max(1);
        let new = new.clamp((self.timeline_width() as u64).min(total), total);
        let rel = if self.cursor >= self.view_start {
            (self.cursor - self.view_start) as f64 / old
        } else {
            0.5
        };
        self.view_span = new;
        self.view_start = self.cursor.saturating_sub((rel * new as f64) as u64);
        self.clamp_view();
    }

    /// Shifts the window by `frac` of its length (negative: left); the cursor moves with it.
    pub fn pan(&mut self, frac: f64) {
        let d = (self.view_span as f64 * frac.abs()) as u64;
        if frac < 0.0 {
            let d = d.min(self.view_start - self.index.t0);
            self.view_start -= d;
            self.cursor = self.cursor.saturating_sub(d);
        } else {
            let max_start = self.index.t1.saturating_sub(self.view_span).max(self.index.t0);
            let d = d.min(max_start - self.view_start.min(max_start));
            self.view_start += d;
            self.cursor = self.cursor.saturating_add(d);
        }
        self.clamp_view();
    }

    fn move_cursor_cols(&mut self, cols: i64) {
        let d = self.ns_per_col() * cols.unsigned_abs();
        let t = if cols < 0 {
            self.cursor.saturating_sub(d)
        } else {
            self.cursor.saturating_add(d)
        };
        self.cursor = t.clamp(self.index.t0, self.index.t1);
        if self.cursor < self.view_start {
            self.view_start = self.cursor;
        } else if self.cursor >= self.view_start + self.view_span {
            self.view_start = self.cursor + self.ns_per_col() - self.view_span;
        }
        self.clamp_view();
    }

    /// Next/previous event of the selected row (CPU: any shown event; task: a switch in/out).
    pub fn step(&mut self, forward: bool) {
        let t = match self.selected() {
            Some(Row::Cpu(c)) => {
                let f = |cpu: u32, e: &EventRec| self.event_shown(cpu, e);
                self.index.step_event(c, self.cursor, forward, &f)
            }
            Some(Row::Task(t)) => self.index.step_task(t, self.cursor, forward),
            _ => None,
        };
        match t {
            Some(t) => {
                self.goto(t);
                self.message.clear();
            }
            None => self.message = format!("no {} event", if forward { "next" } else { "previous" }),
        }
    }

    /// Next/previous shown event on any shown CPU (the event list's ↑/↓).
    pub fn step_any(&mut self, forward: bool) {
        let f = |cpu: u32, e: &EventRec| self.event_shown(cpu, e);
        let mut best: Option<u64> = None;
        for c in 0..self.index.cpus.len() {
            if !self.cpu_shown(c) {
                continue;
            }
            if let Some(t) = self.index.step_event(c, self.cursor, forward, &f) {
                best = Some(match best {
                    None => t,
                    Some(b) if forward => b.min(t),
                    Some(b) => b.max(t),
                });
            }
        }
        if let Some(t) = best {
            self.goto(t);
        }
    }

    /// Runs search `q` from the cursor.
    pub fn search(&mut self, q: &str, forward: bool) {
        if q.is_empty() {
            return;
        }
        self.last_search = Some(q.to_string());
        let f = |cpu: u32, e: &EventRec| self.event_shown(cpu, e);
        match self.index.search(q, self.cursor, forward, &f) {
            Some(hit) => {
                self.goto(hit.ts);
                let rows = self.rows();
                let want = match hit.task {
                    Some(t) if self.task_rows => rows.iter().position(|r| *r == Row::Task(t)),
                    _ => None,
                }
                .or_else(|| {
                    rows.iter()
                        .position(|r| matches!(r, Row::Cpu(c) if self.index.cpus[*c].cpu == hit.cpu))
                });
                if let Some(k) = want {
                    self.sel_row = k;
                }
                let what = match hit.task {
                    Some(t) => format!("task {}", self.index.tasks[t as usize].name),
                    None => "event".to_string(),
                };
                self.message = format!("/{q}: {what} on CPU{} at {}", hit.cpu, fmt_ts(hit.ts));
            }
            None => self.message = format!("/{q}: no match"),
        }
    }

    /// Computes the RTOS's jobs the first time they are asked for.
    pub fn load_jobs(&mut self) {
        if self.jobs.is_none() {
            self.jobs = Some(Jobs::of_file(&self.index.path).map(Arc::new));
        }
    }

    /// The jobs, when they could be made.
    pub fn jobs_ok(&self) -> Option<&Arc<Jobs>> {
        self.jobs.as_ref().and_then(|j| j.as_ref().ok())
    }

    /// Marks a job's window with A and B and puts the cursor at its end.
    fn mark_job(&mut self, from: u64, to: u64, what: &str) {
        self.marker_a = Some(from);
        self.marker_b = Some(to);
        if to.saturating_sub(from) > self.view_span {
            self.view_span = (to - from) * 5 / 4;
        }
        self.view_start = from.saturating_sub(self.view_span / 10);
        self.goto(to);
        self.message = format!("{what}: {} (A..B, release to end)", fmt_dur(to.saturating_sub(from)));
    }

    /// Jumps to the next (or previous) deadline miss after (before) the cursor.
    fn next_miss(&mut self, forward: bool) {
        self.load_jobs();
        let Some(jobs) = self.jobs_ok().cloned() else {
            let why = match &self.jobs {
                Some(Err(e)) => e.clone(),
                _ => String::new(),
            };
            self.message = format!("no RTOS jobs: {why}");
            return;
        };
        let at = self.cursor;
        let found = if forward {
            jobs.misses.iter().find(|m| m.1 > at)
        } else {
            jobs.misses.iter().rev().find(|m| m.1 < at)
        };
        match found {
            Some((from, to, task)) => {
                let k = jobs.misses.iter().position(|m| m.1 == *to).unwrap_or(0) + 1;
                self.mark_job(
                    *from,
                    *to,
                    &format!("deadline miss {k} of {} ({task})", jobs.misses.len()),
                );
            }
            None if jobs.misses.is_empty() => self.message = "no deadline misses in this trace".into(),
            None => {
                self.message = format!(
                    "no deadline miss {}",
                    if forward {
                        "after the cursor"
                    } else {
                        "before the cursor"
                    }
                )
            }
        }
    }

    /// The task selected by the selected row, the task table, or running at the cursor.
    pub fn selected_task(&self) -> Option<u32> {
        if self.panel == Panel::Tasks && self.focus == Focus::Panel {
            return self.task_table().get(self.task_sel).map(|s| s.task);
        }
        match self.selected()? {
            Row::Task(t) => Some(t),
            Row::Cpu(c) => {
                let runs = &self.index.cpus[c].runs;
                runs.at(self.cursor).map(|k| runs.get(k).2)
            }
            Row::Group(_) => None,
        }
    }

    /// Rows of the task table under the current scope and filters.
    pub fn task_table(&self) -> Vec<crate::index::TaskStat> {
        let (a, b) = if self.stats_whole {
            (self.index.t0, self.index.t1.saturating_add(1))
        } else {
            (self.view_start, self.view_start + self.view_span)
        };
        self.index
            .task_stats(a, b)
            .into_iter()
            .filter(|s| self.task_shown(s.task))
            .collect()
    }

    /// Handles a key press.
    pub fn on_key(&mut self, k: KeyEvent) {
        if let Some((kind, mut text)) = self.prompt.take() {
            match k.code {
                KeyCode::Esc => {}
                KeyCode::Enter => match kind {
                    Prompt::Search => self.search(&text, true),
                    Prompt::Goto => match parse_time(&text, self.index.t0) {
                        Some(t) => {
                            self.goto(t);
                            self.message = format!("cursor at {}", fmt_ts(self.cursor));
                        }
                        None => self.message = format!("not a time: {text:?} (try 5.0123, +12ms, 300us)"),
                    },
                },
                KeyCode::Backspace => {
                    text.pop();
                    self.prompt = Some((kind, text));
                }
                KeyCode::Char(c) => {
                    text.push(c);
                    self.prompt = Some((kind, text));
                }
                _ => self.prompt = Some((kind, text)),
            }
            return;
        }
        if self.help {
            self.help = false;
            return;
        }
        if let Some(sel) = self.kind_menu {
            let n = self.index.kinds.len();
            match k.code {
                KeyCode::Up | KeyCode::Char('k') => self.kind_menu = Some(sel.saturating_sub(1)),
                KeyCode::Down | KeyCode::Char('j') => self.kind_menu = Some((sel + 1).min(n.saturating_sub(1))),
                KeyCode::Char(' ') | KeyCode::Char('x') => {
                    if let Some(h) = self.hidden_kinds.get_mut(sel) {
                        *h = !*h;
                    }
                }
                KeyCode::Char('a') => self.hidden_kinds.iter_mut().for_each(|h| *h = false),
                _ => self.kind_menu = None,
            }
            return;
        }
        let before = (self.view_start, self.view_span, self.cursor);
        self.on_view_key(k);
        if let Some(live) = &mut self.live {
            match k.code {
                KeyCode::Char('f') => {
                    live.follow = !live.follow;
                    if live.follow {
                        self.follow_end();
                    }
                }
                KeyCode::End => {
                    live.follow = true;
                    self.follow_end();
                }
                // Zooming keeps following, with the new window length.
                KeyCode::Char('+' | '=' | '-' | '_') if live.follow => {
                    live.window = self.view_span;
                    self.follow_end();
                }
                // Anything else that moves the window or the cursor stops following.
                _ if (self.view_start, self.view_span, self.cursor) != before => live.follow = false,
                _ => {}
            }
        }
    }

    /// The keys of the timeline (not those of a prompt or a menu).
    fn on_view_key(&mut self, k: KeyEvent) {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let shift = k.modifiers.contains(KeyModifiers::SHIFT);
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Esc => self.message.clear(),
            KeyCode::Char('+') | KeyCode::Char('=') => self.zoom(0.5),
            KeyCode::Char('-') | KeyCode::Char('_') => self.zoom(2.0),
            KeyCode::Char('0') => {
                self.view_start = self.index.t0;
                self.view_span = self.index.span().max(1);
                self.clamp_view();
            }
            KeyCode::Left | KeyCode::Right if shift => self.pan(if k.code == KeyCode::Left { -0.5 } else { 0.5 }),
            KeyCode::Char('<') | KeyCode::PageUp => self.pan(-0.5),
            KeyCode::Char('>') | KeyCode::PageDown => self.pan(0.5),
            KeyCode::Left | KeyCode::Char('h') => self.move_cursor_cols(-1),
            KeyCode::Right | KeyCode::Char('l') => self.move_cursor_cols(1),
            KeyCode::Char('H') => self.move_cursor_cols(-10),
            KeyCode::Char('L') => self.move_cursor_cols(10),
            KeyCode::Home => {
                self.view_start = self.index.t0;
                self.goto(self.index.t0);
            }
            KeyCode::End => {
                self.view_start = self.index.t1.saturating_sub(self.view_span);
                self.goto(self.index.t1);
            }
            KeyCode::Up | KeyCode::Char('k') => self.up_down(false),
            KeyCode::Down | KeyCode::Char('j') => self.up_down(true),
            KeyCode::Char(']') => self.step(true),
            KeyCode::Char('[') => self.step(false),
            KeyCode::Char('/') => self.prompt = Some((Prompt::Search, String::new())),
            KeyCode::Char('g') => self.prompt = Some((Prompt::Goto, String::new())),
            KeyCode::Char('n') | KeyCode::Char('N') => match self.last_search.clone() {
                Some(q) => self.search(&q, k.code == KeyCode::Char('n')),
                None => self.message = "no search yet: press / to search".into(),
            },
            KeyCode::Char('a') => {
                self.marker_a = Some(self.cursor);
                self.message = format!("marker A at {}", fmt_ts(self.cursor));
            }
            KeyCode::Char('b') => {
                self.marker_b = Some(self.cursor);
                self.message = format!("marker B at {}", fmt_ts(self.cursor));
            }
            KeyCode::Char('x') => {
                self.marker_a = None;
                self.marker_b = None;
            }
            KeyCode::Char('o') => {
                self.os_filter = match self.os_filter {
                    None => Some(Os::Linux),
                    Some(Os::Linux) => Some(Os::Rtos),
                    Some(Os::Rtos) => None,
                };
                self.fix_selection();
            }
            KeyCode::Char('c') => {
                if let Some(Row::Cpu(c)) = self.selected() {
                    self.hidden_cpus.insert(self.index.cpus[c].cpu);
                    self.message = format!("CPU{} hidden (C shows all)", self.index.cpus[c].cpu);
                    self.fix_selection();
                }
            }
            KeyCode::Char('C') => {
                self.hidden_cpus.clear();
                self.fix_selection();
            }
            KeyCode::Char('T') => {
                self.task_filter = match self.task_filter {
                    Some(_) => None,
                    None => self.selected_task(),
                };
                self.message = match self.task_filter {
                    Some(t) => format!("only task {}", self.index.tasks[t as usize].name),
                    None => "task filter off".into(),
                };
                self.fix_selection();
            }
            KeyCode::Char('e') => self.kind_menu = Some(0),
            KeyCode::Char('r') => {
                self.task_rows = !self.task_rows;
                self.fix_selection();
            }
            KeyCode::Char('t') => {
                self.panel = match self.panel {
                    Panel::Events => Panel::Tasks,
                    Panel::Tasks => Panel::Jobs,
                    Panel::Jobs => Panel::Events,
                };
                if self.panel == Panel::Jobs {
                    self.load_jobs();
                }
            }
            KeyCode::Char('m') | KeyCode::Char('M') => self.next_miss(k.code == KeyCode::Char('m')),
            KeyCode::Enter if self.panel == Panel::Jobs && self.focus == Focus::Panel => {
                let worst = self
                    .jobs_ok()
                    .and_then(|j| j.worst.get(self.job_sel).copied().flatten());
                if let Some((from, to)) = worst {
                    self.mark_job(from, to, "the worst job");
                }
            }
            KeyCode::Char('s') => self.stats_whole = !self.stats_whole,
            KeyCode::Tab => {
                self.focus = match self.focus {
                    Focus::Timeline => Focus::Panel,
                    Focus::Panel => Focus::Timeline,
                }
            }
            KeyCode::Enter if self.panel == Panel::Tasks && self.focus == Focus::Panel => {
                if let Some(s) = self.task_table().get(self.task_sel) {
                    let t = s.task;
                    if let Some(x) = self.index.step_task(t, self.cursor, true) {
                        self.goto(x);
                    }
                }
            }
            _ => {}
        }
    }

    fn up_down(&mut self, down: bool) {
        match (self.focus, self.panel) {
            (Focus::Panel, Panel::Events) => self.step_any(down),
            (Focus::Panel, Panel::Jobs) => {
                let n = self.jobs_ok().map_or(0, |j| j.tasks.len());
                self.job_sel = if down {
                    (self.job_sel + 1).min(n.saturating_sub(1))
                } else {
                    self.job_sel.saturating_sub(1)
                };
            }
            (Focus::Panel, Panel::Tasks) => {
                let n = self.task_table().len();
                self.task_sel = if down {
                    (self.task_sel + 1).min(n.saturating_sub(1))
                } else {
                    self.task_sel.saturating_sub(1)
                };
            }
            (Focus::Timeline, _) => {
                let rows = self.rows();
                let mut k = self.sel_row;
                loop {
                    let next = if down { k + 1 } else { k.wrapping_sub(1) };
                    match rows.get(next) {
                        Some(Row::Group(_)) => k = next,
                        Some(_) => {
                            self.sel_row = next;
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
    }

    /// Handles a mouse event (click: cursor + row; wheel: zoom around the pointer).
    pub fn on_mouse(&mut self, m: MouseEvent) {
        let g = self.geometry(ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1));
        let tl = g.timeline;
        let in_tl = m.column >= tl.x
            && m.column < tl.x + tl.width
            && m.row >= g.rows_area.y
            && m.row < g.rows_area.y + g.rows_area.height;
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) if in_tl || (m.row == g.axis.y && m.column >= tl.x) => {
                self.cursor = self.col_time(m.column - tl.x).clamp(self.index.t0, self.index.t1);
                if let Some(k) = g.row_at(m.row) {
                    self.sel_row = k;
                    self.fix_selection();
                }
                self.focus = Focus::Timeline;
            }
            MouseEventKind::Down(MouseButton::Left) if m.row > g.panel.y && m.row < g.panel.y + g.panel.height => {
                self.focus = Focus::Panel;
                let line = (m.row - g.panel.y - 1) as usize;
                match self.panel {
                    Panel::Events => {
                        let (list, _) = self.event_lines(g.panel.height.saturating_sub(1) as usize);
                        if let Some(&(c, k)) = list.get(line) {
                            let t = self.index.cpus[c].events[k].ts;
                            self.goto(t);
                        }
                    }
                    Panel::Tasks => self.task_sel = line.saturating_sub(1),
                    Panel::Jobs => self.job_sel = line.saturating_sub(1),
                }
            }
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown if in_tl => {
                self.cursor = self.col_time(m.column - tl.x).clamp(self.index.t0, self.index.t1);
                self.zoom(if m.kind == MouseEventKind::ScrollUp { 0.5 } else { 2.0 });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_times() {
        let t0 = 5_000_000_000;
        assert_eq!(parse_time("5.5", t0), Some(5_500_000_000));
        assert_eq!(parse_time("+12ms", t0), Some(5_012_000_000));
        assert_eq!(parse_time("12ms", t0), Some(5_012_000_000));
        assert_eq!(parse_time("300us", t0), Some(5_000_300_000));
        assert_eq!(parse_time("6s", t0), Some(6_000_000_000));
        assert_eq!(parse_time("abc", t0), None);
        assert_eq!(parse_time("-1", t0), None);
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_dur(999), "999 ns");
        assert_eq!(fmt_dur(1_500), "1.500 us");
        assert_eq!(fmt_dur(2_000_000), "2.000 ms");
        assert_eq!(fmt_ts(5_000_123_456), "5.000123");
    }
}
