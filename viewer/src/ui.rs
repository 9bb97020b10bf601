//! Drawing: a pure function of [`App`]. Layout math lives in [`crate::layout::Geometry`] so the
//! mouse handler maps clicks with the very same numbers the frame was drawn with.
//!
//! Screen, top to bottom: the time axis (cursor `▼`, markers `A`/`B`), the timeline (per OS a
//! title line, per CPU a block line and a marks line, optional task rows), the bottom panel
//! (events around the cursor, or the task table) and the status line.
//!
//! Glyphs do not depend on color, so the screen reads the same with `NO_COLOR`: a task block
//! is its name then `=` fill (with color the fill is blank on the task's color); a column
//! holding several runs shows how busy it is (`░▒▓█`); idle is blank; on the marks line `^`
//! is a probe hit, `!` lost events, `·` other events, `|TEXT` a marker written to
//! `trace_marker`; the cursor column is reverse video.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Clear};
use ratatui::Frame;

use crate::app::{fmt_dur, fmt_ts, App, Focus, Panel, Prompt, Row};
use crate::index::{KindClass, Os};
use crate::layout::Geometry;
use crate::runs::Runs;

const PALETTE: [Color; 10] = [
    Color::Cyan,
    Color::Green,
    Color::Yellow,
    Color::Magenta,
    Color::LightBlue,
    Color::LightRed,
    Color::LightGreen,
    Color::LightCyan,
    Color::LightMagenta,
    Color::LightYellow,
];

fn task_color(pid: i32) -> Color {
    PALETTE[(pid.unsigned_abs() as usize).wrapping_mul(7) % PALETTE.len()]
}

/// Column state of a block line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    Empty,
    Run(usize, u32),
    Mixed(Option<u32>, u8),
}

fn cells(runs: &Runs, edges: &[u64], idle: impl Fn(u32) -> bool) -> Vec<Cell> {
    let mut out = Vec::with_capacity(edges.len().saturating_sub(1));
    for c in 0..edges.len() - 1 {
        let (a, b) = (edges[c], edges[c + 1].max(edges[c] + 1));
        let r = runs.overlapping(a, b);
        // A run covering at least half of the column owns it (blocks snap to columns).
        let owner = runs.at(a + (b - a) / 2).filter(|&k| {
            let (s, e, _) = runs.get(k);
            2 * (e.min(b) - s.max(a)) >= b - a
        });
        let cell = match (r.len(), owner) {
            (0, _) => Cell::Empty,
            (_, Some(k)) => {
                let who = runs.get(k).2;
                if idle(who) && runs.busy(a, b) * 2 < b - a {
                    Cell::Empty
                } else if idle(who) {
                    mixed(runs, a, b, r)
                } else {
                    Cell::Run(k, who)
                }
            }
            _ => mixed(runs, a, b, r),
        };
        out.push(cell);
    }
    out
}

fn mixed(runs: &Runs, a: u64, b: u64, r: std::ops::Range<usize>) -> Cell {
    let busy = runs.busy(a, b) * 8 / (b - a);
    if busy == 0 && runs.busy(a, b) == 0 {
        return Cell::Empty;
    }
    // Color of the column: the run at its middle if busy, else the longest of the ends.
    let mid = a + (b - a) / 2;
    let counted = |k: usize| {
        let (s, e, _) = runs.get(k);
        runs.busy(s, e.max(s + 1)) > 0
    };
    let pick = runs
        .at(mid)
        .filter(|&k| counted(k))
        .or_else(|| [r.start, r.end - 1].into_iter().find(|&k| counted(k)));
    Cell::Mixed(pick.map(|k| runs.get(k).2), busy.min(8) as u8)
}

fn density_glyph(d: u8) -> char {
    match d {
        7.. => '█',
        4..=6 => '▓',
        1..=3 => '▒',
        _ => '░',
    }
}

fn put(buf: &mut Buffer, x: u16, y: u16, ch: char, style: Style) {
    if let Some(cell) = buf.cell_mut((x, y)) {
        cell.set_char(ch).set_style(style);
    }
}

/// Writes `s` from `x`, at most `max` columns, clipped to the buffer (a
/// terminal of any size, down to 1×1, is drawn without panic).
fn text(buf: &mut Buffer, x: u16, y: u16, s: &str, max: u16, style: Style) {
    let area = buf.area;
    if y < area.top() || y >= area.bottom() || x < area.left() || x >= area.right() {
        return;
    }
    let max = max.min(area.right() - x);
    buf.set_stringn(x, y, s, max as usize, style);
}

struct Ctx<'a> {
    app: &'a App,
    edges: Vec<u64>,
}

impl Ctx<'_> {
    fn style_of(&self, task: u32) -> Style {
        let app = self.app;
        let t = &app.index.tasks[task as usize];
        let dim = app.task_filter.is_some_and(|f| f != task);
        if !app.color {
            return if dim {
                Style::default().add_modifier(Modifier::DIM)
            } else {
                Style::default()
            };
        }
        if dim {
            Style::default().fg(Color::Gray).bg(Color::DarkGray)
        } else {
            Style::default().fg(Color::Black).bg(task_color(t.pid))
        }
    }

    fn block_line(&self, buf: &mut Buffer, x0: u16, y: u16, cells: &[Cell], label: impl Fn(u32) -> String) {
        let app = self.app;
        let fill = if app.color { ' ' } else { '=' };
        let mut c = 0;
        while c < cells.len() {
            match cells[c] {
                Cell::Empty => {
                    put(buf, x0 + c as u16, y, ' ', Style::default());
                    c += 1;
                }
                Cell::Mixed(who, d) => {
                    let style = match (who, app.color) {
                        (Some(w), true) if app.task_filter.is_none_or(|f| f == w) => {
                            Style::default().fg(task_color(app.index.tasks[w as usize].pid))
                        }
                        (Some(_), true) => Style::default().fg(Color::DarkGray),
                        _ => Style::default(),
                    };
                    put(buf, x0 + c as u16, y, density_glyph(d), style);
                    c += 1;
                }
                Cell::Run(k, who) => {
                    let mut e = c + 1;
                    while e < cells.len() && cells[e] == Cell::Run(k, who) {
                        e += 1;
                    }
                    let style = self.style_of(who);
                    let dim = app.task_filter.is_some_and(|f| f != who);
                    let name = if e - c >= 3 && !dim { label(who) } else { String::new() };
                    let mut chars = name.chars();
                    for col in c..e {
                        let ch = chars.next().unwrap_or(if dim { '·' } else { fill });
                        put(buf, x0 + col as u16, y, ch, style);
                    }
                    c = e;
                }
            }
        }
    }

    fn marks_line(&self, buf: &mut Buffer, x0: u16, y: u16, cpos: usize) {
        let app = self.app;
        let cpu = &app.index.cpus[cpos];
        let probe_kind_hidden = app
            .index
            .kinds
            .iter()
            .enumerate()
            .any(|(k, kind)| kind.class == KindClass::Probe && app.hidden_kinds[k]);
        let (lost_style, probe_style, ev_style) = if app.color {
            (
                Style::default().fg(Color::LightRed).add_modifier(Modifier::BOLD),
                Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                Style::default().fg(Color::DarkGray),
            )
        } else {
            (
                Style::default().add_modifier(Modifier::BOLD),
                Style::default(),
                Style::default(),
            )
        };
        for c in 0..self.edges.len() - 1 {
            let (a, b) = (self.edges[c], self.edges[c + 1].max(self.edges[c] + 1));
            let x = x0 + c as u16;
            let lost = cpu.lost.partition_point(|l| l.ts < a);
            if cpu.lost.get(lost).is_some_and(|l| l.ts < b) {
                put(buf, x, y, '!', lost_style);
                continue;
            }
            if !probe_kind_hidden && app.task_filter.is_none() {
                let p = cpu.probes.partition_point(|&t| t < a);
                if cpu.probes.get(p).is_some_and(|&t| t < b) {
                    put(buf, x, y, '^', probe_style);
                    continue;
                }
            }
            let k = cpu.events.partition_point(|e| e.ts < a);
            let other = cpu.events[k..].iter().take_while(|e| e.ts < b).take(32).any(|e| {
                let class = app.index.kinds[e.kind as usize].class;
                let marked = class == KindClass::Other || (class == KindClass::Probe && app.task_filter.is_some());
                marked && app.event_shown(cpu.cpu, e)
            });
            put(buf, x, y, if other { '·' } else { ' ' }, ev_style);
        }
        // Markers written to trace_marker: `|` and their text, over the dots,
        // each text cut where the next marker starts.
        let (start, end) = (self.edges[0], *self.edges.last().unwrap_or(&self.edges[0]));
        let k = cpu.events.partition_point(|e| e.ts < start);
        let width = (self.edges.len() - 1) as u16;
        let mut marks: Vec<(u16, String)> = Vec::new();
        for e in cpu.events[k..].iter().take_while(|e| e.ts < end) {
            if app.index.kinds[e.kind as usize].class != KindClass::Marker || !app.event_shown(cpu.cpu, e) {
                continue;
            }
            let c = self.edges.partition_point(|&t| t <= e.ts).saturating_sub(1) as u16;
            match marks.last_mut() {
                // Several in one column: the column says how many.
                Some((last, text)) if *last == c => *text = format!("{text}+"),
                _ if c < width => marks.push((c, app.index.marker_text(cpu, e))),
                _ => {}
            }
        }
        let mut free_from = 0u16;
        for (i, (c, name)) in marks.iter().enumerate() {
            let next = marks.get(i + 1).map_or(width, |m| m.0);
            let len = name.chars().count() as u16 + 1;
            // `|TEXT` after the mark, or `TEXT|` before it when only the
            // space before it is free (the newest marker at the right edge).
            let (at, label) = if c + len > next && *c + 1 >= free_from + len && next == width {
                (c + 1 - len, format!("{name}|"))
            } else {
                (*c, format!("|{name}"))
            };
            let room = if at == *c { next - c } else { len };
            text(buf, x0 + at, y, &label, len.min(room), marker_style(app));
            free_from = at + len.min(room);
        }
    }
}

fn marker_style(app: &App) -> Style {
    if app.color {
        Style::default().fg(Color::LightGreen).add_modifier(Modifier::BOLD)
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let g = app.geometry(area);
    let buf = f.buffer_mut();
    let w = g.timeline.width.max(1) as u128;
    let edges: Vec<u64> = (0..=g.timeline.width as u128)
        .map(|c| app.view_start + (app.view_span as u128 * c / w) as u64)
        .collect();
    let ctx = Ctx { app, edges };
    draw_axis(buf, &g, app);
    draw_rows(buf, &g, &ctx);
    match app.panel {
        Panel::Events => draw_events(buf, &g, app),
        Panel::Tasks => draw_tasks(buf, &g, app),
        Panel::Jobs => draw_jobs(buf, &g, app),
    }
    draw_status(buf, &g, app, area);
    if let Some(sel) = app.kind_menu {
        draw_kind_menu(f, area, app, sel);
    }
    if app.help {
        draw_help(f, area);
    }
}

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

fn draw_axis(buf: &mut Buffer, g: &Geometry, app: &App) {
    let y = g.axis.y;
    text(
        buf,
        g.axis.x,
        y,
        &fmt_dur(app.view_span),
        g.timeline.x - g.axis.x,
        bold(),
    );
    let tl = g.timeline;
    let step = if tl.width >= 100 { 25 } else { 20 };
    let mut c = 0;
    while c + 8 < tl.width {
        let t = app.view_start + (app.view_span as u128 * c as u128 / tl.width.max(1) as u128) as u64;
        let label = format!("|+{}", fmt_dur(t - app.view_start).replace(' ', ""));
        if c + label.chars().count() as u16 <= tl.width {
            text(buf, tl.x + c, y, &label, step - 1, Style::default());
        }
        c += step;
    }
    let mut mark = |t: Option<u64>, ch: char| {
        if let Some(col) = t.and_then(|t| app.time_col(t)) {
            put(buf, tl.x + col, y, ch, bold());
        }
    };
    // Markers win over the cursor glyph (the cursor column stays reverse video below).
    mark(Some(app.cursor), '▼');
    mark(app.marker_a, 'A');
    mark(app.marker_b, 'B');
}

fn draw_rows(buf: &mut Buffer, g: &Geometry, ctx: &Ctx) {
    let app = ctx.app;
    let rows = app.rows();
    let tl = g.timeline;
    let label_w = tl.x - g.rows_area.x;
    let cursor_col = app.time_col(app.cursor);
    let idle = |w: u32| app.index.tasks[w as usize].idle;
    for &(k, y, n) in &g.placed {
        let selected = k == app.sel_row && app.focus == Focus::Timeline;
        let sel_style = if selected {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
        };
        match rows[k] {
            Row::Group(os) => {
                let cpus: Vec<String> = rows
                    .iter()
                    .filter_map(|r| match r {
                        Row::Cpu(c) if app.index.cpus[*c].os == os => Some(format!("CPU{}", app.index.cpus[*c].cpu)),
                        _ => None,
                    })
                    .collect();
                let title = format!("── {} {} ", os.label(), cpus.join(","));
                let s = format!("{title:─<width$}", width = g.rows_area.width as usize);
                let style = if app.color {
                    bold().fg(if os == Os::Rtos {
                        Color::LightMagenta
                    } else {
                        Color::LightGreen
                    })
                } else {
                    bold()
                };
                text(buf, g.rows_area.x, y, &s, g.rows_area.width, style);
            }
            Row::Cpu(c) => {
                let cpu = &app.index.cpus[c];
                let label = format!("{}CPU{}", if selected { '>' } else { ' ' }, cpu.cpu);
                text(
                    buf,
                    g.rows_area.x,
                    y,
                    &format!("{label:<width$}", width = label_w as usize),
                    label_w,
                    sel_style,
                );
                // Without any sched_switch on this CPU nothing says how busy it was.
                let pct = if cpu.runs.is_empty() {
                    "  n/a".to_string()
                } else {
                    let busy = cpu.runs.busy(app.view_start, app.view_start + app.view_span);
                    format!(" {:>3}%", busy * 100 / app.view_span.max(1))
                };
                text(buf, g.rows_area.x, y + 1, &pct, label_w, Style::default());
                let cells = cells(&cpu.runs, &ctx.edges, idle);
                ctx.block_line(buf, tl.x, y, &cells, |w| app.index.tasks[w as usize].name.to_string());
                ctx.marks_line(buf, tl.x, y + 1, c);
            }
            Row::Task(t) => {
                let task = &app.index.tasks[t as usize];
                let label = format!("{}{}", if selected { '>' } else { ' ' }, task.name);
                text(
                    buf,
                    g.rows_area.x,
                    y,
                    &format!("{label:<width$}", width = label_w as usize),
                    label_w.saturating_sub(1),
                    sel_style,
                );
                let runs = &app.index.task_runs[t as usize];
                let cells: Vec<Cell> = cells(runs, &ctx.edges, |_| false)
                    .into_iter()
                    .map(|c| match c {
                        Cell::Run(k, _) => Cell::Run(k, t),
                        Cell::Mixed(_, d) => Cell::Mixed(Some(t), d),
                        e => e,
                    })
                    .collect();
                // The label names the task; its blocks carry no text.
                ctx.block_line(buf, tl.x, y, &cells, |_| String::new());
            }
        }
        if let Some(col) = cursor_col {
            for line in y..y + n {
                if !matches!(rows[k], Row::Group(_)) {
                    if let Some(cell) = buf.cell_mut((tl.x + col, line)) {
                        cell.modifier.insert(Modifier::REVERSED);
                    }
                }
            }
        }
    }
}

fn panel_title(buf: &mut Buffer, g: &Geometry, app: &App, title: &str) {
    let focus = if app.focus == Focus::Panel { "*" } else { "" };
    let s = format!("─{focus}{title} ");
    let s = format!("{s:─<width$}", width = g.panel.width as usize);
    text(buf, g.panel.x, g.panel.y, &s, g.panel.width, bold());
}

fn filters_text(app: &App) -> String {
    let mut v = Vec::new();
    if let Some(os) = app.os_filter {
        v.push(format!("os={}", os.label()));
    }
    if !app.hidden_cpus.is_empty() {
        v.push(format!("hidden CPU{:?}", app.hidden_cpus.iter().collect::<Vec<_>>()));
    }
    if let Some(t) = app.task_filter {
        v.push(format!("task={}", app.index.tasks[t as usize].name));
    }
    let hidden = app.hidden_kinds.iter().filter(|h| **h).count();
    if hidden > 0 {
        v.push(format!("{hidden} event types hidden"));
    }
    v.join(" ")
}

fn draw_events(buf: &mut Buffer, g: &Geometry, app: &App) {
    let f = filters_text(app);
    let title = if f.is_empty() {
        "Events at cursor (t: tasks)".to_string()
    } else {
        format!("Events at cursor [{f}]")
    };
    panel_title(buf, g, app, &title);
    let lines = g.panel.height.saturating_sub(1) as usize;
    let (list, at) = app.event_lines(lines);
    // Wide enough for every event name of the trace (up to 24), so that
    // names alike in their first characters do not read the same.
    let kind_w = app
        .index
        .kinds
        .iter()
        .map(|k| k.name.split_once(':').map_or(k.name.len(), |(_, n)| n.len()))
        .max()
        .unwrap_or(12)
        .clamp(12, 24);
    for (i, &(c, k)) in list.iter().enumerate() {
        let cpu = &app.index.cpus[c];
        let e = &cpu.events[k];
        let task = &app.index.tasks[e.task as usize];
        let kind = &app.index.kinds[e.kind as usize].name;
        let short = kind.split_once(':').map(|(_, n)| n).unwrap_or(kind);
        let mark = if i == at { '>' } else { ' ' };
        let s = format!(
            "{mark}{} {:>2} {:>14.14}-{:<6} {:<kind_w$.kind_w$} {}",
            fmt_ts(e.ts),
            cpu.cpu,
            task.name,
            task.pid,
            short,
            app.index.describe(cpu, e)
        );
        let style = if i == at {
            if app.focus == Focus::Panel {
                Style::default().add_modifier(Modifier::REVERSED)
            } else {
                bold()
            }
        } else {
            Style::default()
        };
        text(buf, g.panel.x, g.panel.y + 1 + i as u16, &s, g.panel.width, style);
    }
    if list.is_empty() {
        text(
            buf,
            g.panel.x,
            g.panel.y + 1,
            " (no events under the current filters)",
            g.panel.width,
            Style::default(),
        );
    }
}

fn draw_tasks(buf: &mut Buffer, g: &Geometry, app: &App) {
    let scope = if app.stats_whole {
        "whole trace"
    } else {
        "visible window"
    };
    panel_title(buf, g, app, &format!("Tasks, {scope} (s: scope, t: events)"));
    let head = format!(
        " {:<16} {:>7} {:<5} {:>6} {:>7} {:>10} {:>10} {:>10}",
        "task", "pid", "OS", "cpu%", "runs", "min", "avg", "max"
    );
    text(buf, g.panel.x, g.panel.y + 1, &head, g.panel.width, bold());
    let (a, b) = if app.stats_whole {
        (app.index.t0, app.index.t1.saturating_add(1))
    } else {
        (app.view_start, app.view_start + app.view_span)
    };
    let len = (b - a).max(1);
    let table = app.task_table();
    let lines = g.panel.height.saturating_sub(2) as usize;
    let first = app.task_sel.saturating_sub(lines.saturating_sub(1));
    for (i, s) in table.iter().enumerate().skip(first).take(lines) {
        let t = &app.index.tasks[s.task as usize];
        let pct = s.cpu_ns as f64 * 100.0 / len as f64;
        let line = format!(
            " {:<16.16} {:>7} {:<5} {:>6.2} {:>7} {:>10} {:>10} {:>10}",
            t.name,
            t.pid,
            t.os.label(),
            pct,
            s.runs,
            fmt_dur(s.min_ns),
            fmt_dur(s.avg_ns),
            fmt_dur(s.max_ns)
        );
        table_line(buf, g, i - first, &line, row_style(app, i == app.task_sel));
    }
}

/// A table row's style: reversed when it is selected and the panel has focus.
fn row_style(app: &App, selected: bool) -> Style {
    if selected && app.focus == Focus::Panel {
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        Style::default()
    }
}

/// Line `k` of the panel's table (below its title and header).
fn table_line(buf: &mut Buffer, g: &Geometry, k: usize, line: &str, style: Style) {
    text(buf, g.panel.x, g.panel.y + 2 + k as u16, line, g.panel.width, style);
}

fn draw_jobs(buf: &mut Buffer, g: &Geometry, app: &App) {
    panel_title(
        buf,
        g,
        app,
        "RTOS jobs (Enter: worst job, m M: next/prev miss, t: events)",
    );
    let jobs = match &app.jobs {
        Some(Ok(j)) => j,
        Some(Err(e)) => {
            text(
                buf,
                g.panel.x,
                g.panel.y + 1,
                &format!(" no RTOS jobs: {e}"),
                g.panel.width,
                Style::default(),
            );
            return;
        }
        None => return,
    };
    let head = format!(
        " {:<16} {:>4} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "task", "prio", "jobs", "period", "exec p50", "resp p50", "resp p99", "resp max", "misses"
    );
    text(buf, g.panel.x, g.panel.y + 1, &head, g.panel.width, bold());
    let lines = g.panel.height.saturating_sub(2) as usize;
    let first = app.job_sel.saturating_sub(lines.saturating_sub(1));
    let d = |v: Option<u64>| v.map_or("-".to_string(), fmt_dur);
    for (i, t) in jobs.tasks.iter().enumerate().skip(first).take(lines) {
        let line = format!(
            " {:<16.16} {:>4} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7}",
            t.name,
            t.prio,
            t.jobs,
            d(t.period_ns),
            d(t.exec_ns.map(|x| x.p50)),
            d(t.response_ns.map(|x| x.p50)),
            d(t.response_ns.map(|x| x.p99)),
            d(t.response_ns.map(|x| x.max)),
            t.misses
        );
        let mut style = row_style(app, i == app.job_sel);
        if t.misses > 0 && app.color {
            style = style.fg(Color::Red);
        }
        table_line(buf, g, i - first, &line, style);
    }
}

fn draw_status(buf: &mut Buffer, g: &Geometry, app: &App, _area: Rect) {
    let style = Style::default().add_modifier(Modifier::REVERSED);
    let y = g.status.y;
    let blank = " ".repeat(g.status.width as usize);
    text(buf, g.status.x, y, &blank, g.status.width, style);
    let s = if let Some((kind, t)) = &app.prompt {
        match kind {
            Prompt::Search => format!("/{t}_   (task or event name; Enter: find, Esc: cancel)"),
            Prompt::Goto => format!("go to time: {t}_   (5.0123 | +12ms | 300us)"),
        }
    } else {
        let file = std::path::Path::new(&app.index.path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let live = match &app.live {
            Some(l) if l.ended => format!("recorded │ {} │ ", l.status),
            Some(l) if l.follow => format!("● LIVE, following │ {} │ ", l.status),
            Some(l) => format!("● LIVE, paused (f: follow) │ {} │ ", l.status),
            None => String::new(),
        };
        let mut s = format!(
            "{live}{file} │ span {} │ cur {} │ zoom {}",
            fmt_dur(app.index.span()),
            fmt_ts(app.cursor),
            fmt_dur(app.view_span)
        );
        if let (Some(a), Some(b)) = (app.marker_a, app.marker_b) {
            s += &format!(" │ A-B Δ{}", fmt_dur(a.abs_diff(b)));
        } else if let Some(a) = app.marker_a.or(app.marker_b) {
            s += &format!(" │ Δmark {}", fmt_dur(a.abs_diff(app.cursor)));
        }
        if let Some(n) = app.loading {
            s += &format!(" │ indexing… {n} events so far, shown up to {}", fmt_ts(app.index.t1));
        } else if !app.message.is_empty() {
            s += &format!(" │ {}", app.message);
        } else {
            s += " │ ?:help";
        }
        s
    };
    text(buf, g.status.x, y, &s, g.status.width, style);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h)
}

/// Key help, also used by the README.
pub const HELP: &[&str] = &[
    "+ -  zoom in/out at cursor  0 whole trace",
    "← →  cursor (h l; H L ×10)  < > pan ½ window",
    "Home End  start/end         g  go to time",
    "↑ ↓  select row (or list)   Tab  focus panel",
    "[ ]  prev/next event of selected CPU/task",
    "/    search task or event   n N  next/prev hit",
    "a b  set marker A/B         x  clear markers",
    "o    OS filter (all/Linux/RTOS)",
    "c C  hide selected CPU / show all CPUs",
    "T    only selected task (again: off)",
    "e    event-type filter menu",
    "r    task rows   t  events/tasks/jobs panel",
    "m M  next/prev RTOS deadline miss (A..B: job)",
    "s    task stats: window / whole trace",
    "f    live: follow the newest (End: follow)",
    "mouse: click = cursor, wheel = zoom",
    "q    quit      (any key closes this help)",
];

fn draw_help(f: &mut Frame, area: Rect) {
    let r = centered(area, 50, HELP.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(Block::default().borders(Borders::ALL).title(" keys "), r);
    let buf = f.buffer_mut();
    let lines = r.height.saturating_sub(2) as usize;
    for (i, l) in HELP.iter().enumerate().take(lines) {
        text(
            buf,
            r.x + 1,
            r.y + 1 + i as u16,
            l,
            r.width.saturating_sub(2),
            Style::default(),
        );
    }
}

fn draw_kind_menu(f: &mut Frame, area: Rect, app: &App, sel: usize) {
    let n = app.index.kinds.len() as u16;
    let r = centered(area, 50, n + 3);
    f.render_widget(Clear, r);
    f.render_widget(
        Block::default()
            .borders(Borders::ALL)
            .title(" event types: space toggles, a all, Esc closes "),
        r,
    );
    let buf = f.buffer_mut();
    let lines = r.height.saturating_sub(2) as usize;
    let first = sel.saturating_sub(lines.saturating_sub(1));
    for (i, k) in app.index.kinds.iter().enumerate().skip(first).take(lines) {
        let on = if app.hidden_kinds[i] { ' ' } else { 'x' };
        let s = format!("[{on}] {} ({})", k.name, k.count);
        let style = if i == sel {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
        };
        text(
            buf,
            r.x + 1,
            r.y + 1 + (i - first) as u16,
            &s,
            r.width.saturating_sub(2),
            style,
        );
    }
}
