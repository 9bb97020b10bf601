//! The timing analysis as a self-contained HTML page: the per-task table,
//! response-time histograms with each task's deadline, the tick's latency
//! histogram, CPU load over time, and the worst jobs with what Linux ran
//! meanwhile. Plots are inline SVG: no script, no file beside it.

use std::fmt::Write as _;

use crate::timing::{us, Timing, TIMER_IRQ};

const W: f64 = 560.0;
const H: f64 = 180.0;
const PAD: f64 = 36.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// Text made safe inside HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A histogram of `values_ns` in 40 bins from 0 to a little above their
/// p99 (or the marker, whichever is larger: a long tail would squeeze the
/// body into one bar), the tail beyond in the last bin; with a vertical
/// marker (a deadline).
fn histogram(title: &str, values_ns: &[u64], marker_ns: Option<u64>) -> String {
    let mut s = String::new();
    let mut sorted = values_ns.to_vec();
    sorted.sort_unstable();
    let max = sorted.last().copied().unwrap_or(0);
    let p99 = sorted
        .get(sorted.len().saturating_sub(1) * 99 / 100)
        .copied()
        .unwrap_or(0);
    let marker = marker_ns.unwrap_or(0);
    let top = (p99 + p99 / 4).max(marker).min(max.max(marker)).max(1) as f64;
    let tail = max as f64 > top;
    const BINS: usize = 40;
    let mut bins = [0usize; BINS];
    for &v in values_ns {
        bins[((v as f64 / top * BINS as f64) as usize).min(BINS - 1)] += 1;
    }
    let most = bins.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (pw, ph) = (W - 2.0 * PAD, H - 2.0 * PAD);
    let _ = write!(
        s,
        r#"<svg width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img"><title>{t}</title><text x="{PAD}" y="16" font-size="13">{t}</text>"#,
        t = esc(title)
    );
    let bw = pw / BINS as f64;
    for (i, &n) in bins.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let h = n as f64 / most * ph;
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#1f77b4"><title>{n} jobs</title></rect>"##,
            PAD + i as f64 * bw,
            PAD + ph - h,
            bw - 1.0
        );
    }
    if let Some(m) = marker_ns {
        let x = PAD + m as f64 / top * pw;
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{PAD}" y2="{:.1}" stroke="#d62728" stroke-dasharray="4"/><text x="{x:.1}" y="{:.1}" font-size="11" fill="#d62728" text-anchor="{}">deadline {} us</text>"##,
            PAD + ph,
            PAD - 4.0,
            if x > W * 0.7 { "end" } else { "start" },
            us(m)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{PAD}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#333"/><text x="{PAD}" y="{:.1}" font-size="11">0</text><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text><text x="4" y="{:.1}" font-size="11">{}</text></svg>"##,
        PAD + pw,
        PAD + ph + 14.0,
        PAD + pw,
        PAD + ph + 14.0,
        if tail {
            format!("{} us and more (max {})", us(top as u64), us(max))
        } else {
            format!("{} us", us(top as u64))
        },
        PAD + 10.0,
        most as usize,
        y = PAD + ph
    );
    s
}

/// Lines of percentages over windows.
fn load_chart(title: &str, series: &[(&str, &[f64])], seconds: &[f64]) -> String {
    let mut s = String::new();
    let (pw, ph) = (W - 2.0 * PAD, H - 2.0 * PAD);
    let n = seconds.len().max(2) - 1;
    let _ = write!(
        s,
        r#"<svg width="{W}" height="{h}" viewBox="0 0 {W} {h}" role="img"><title>{t}</title><text x="{PAD}" y="16" font-size="13">{t}</text>"#,
        h = H + 16.0 * series.len().div_ceil(3) as f64,
        t = esc(title)
    );
    for (k, (name, vals)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let pts: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    PAD + i as f64 / n as f64 * pw,
                    PAD + ph - v.min(100.0) / 100.0 * ph
                )
            })
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/><text x="{:.1}" y="{:.1}" font-size="11" fill="{color}">{}</text>"#,
            pts.join(" "),
            PAD + (k % 3) as f64 * 170.0,
            H + 4.0 + (k / 3) as f64 * 16.0,
            esc(name)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{PAD}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#333"/><text x="4" y="{:.1}" font-size="11">100 %</text><text x="{PAD}" y="{:.1}" font-size="11">{:.1} s</text><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{:.1} s</text></svg>"##,
        PAD + pw,
        PAD + 4.0,
        PAD + ph + 14.0,
        seconds.first().copied().unwrap_or(0.0),
        PAD + pw,
        PAD + ph + 14.0,
        seconds.last().copied().unwrap_or(0.0),
        y = PAD + ph
    );
    s
}

/// The whole page.
pub fn html(t: &Timing, source: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>RTOS timing: {src}</title><style>\
         body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;font-size:13px}}\
         td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
         .miss{{color:#d62728;font-weight:bold}}svg{{margin:4px;border:1px solid #eee}}</style></head><body>\
         <h1>RTOS timing</h1><p>{src}: {ticks} ticks timed{tick}. Times in µs.</p>",
        src = esc(source),
        ticks = t.ticks,
        tick = t.tick_ns.map_or(String::new(), |n| format!(", one every {} µs", us(n)))
    );
    s.push_str(
        "<h2>Tasks</h2><table><tr><th>task</th><th>prio</th><th>jobs</th><th>period</th><th>release jitter</th>\
         <th>exec p50</th><th>exec max</th><th>response p50</th><th>p99</th><th>max</th><th>start latency p50</th>\
         <th>preemptions</th><th>deadline</th><th>misses</th></tr>",
    );
    for x in &t.tasks {
        let figures: String = x.figures_us().iter().map(|f| format!("<td>{f}</td>")).collect();
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td>{figures}<td>{}</td><td>{}</td><td{}>{}</td></tr>",
            esc(&x.name),
            x.prio,
            x.jobs,
            x.preemptions,
            x.deadline_ns.map_or("-".to_string(), us),
            if x.misses > 0 { " class=\"miss\"" } else { "" },
            x.misses
        );
    }
    s.push_str("</table><h2>Response times</h2>");
    for x in &t.tasks {
        let v: Vec<u64> = t
            .jobs
            .iter()
            .filter(|j| j.task == x.name)
            .map(|j| j.response_ns)
            .collect();
        s.push_str(&histogram(
            &format!("{} (prio {}): {} jobs, {} missed", x.name, x.prio, x.jobs, x.misses),
            &v,
            x.deadline_ns,
        ));
    }
    if let Some(tick) = t.irqs.iter().find(|i| i.irq == TIMER_IRQ) {
        s.push_str("<h2>The tick's interrupt latency</h2><p>From when the timer was due to the RTOS's handler (<code>OSTimeTick</code>), through the hypervisor.</p>");
        s.push_str(&histogram(
            &format!("due → handler, {} interrupts", tick.count),
            &tick.due_to_handler_samples,
            None,
        ));
        s.push_str("<table><tr><th>step</th><th>p50</th><th>p99</th><th>max</th></tr>");
        for (name, sp) in [
            ("due → at EL2", tick.due_to_el2_ns),
            ("at EL2 → injected", tick.el2_to_injected_ns),
            ("injected → handler", tick.injected_to_handler_ns),
            ("due → handler", tick.due_to_handler_ns),
        ] {
            if let Some(sp) = sp {
                let _ = write!(
                    s,
                    "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    us(sp.p50),
                    us(sp.p99),
                    us(sp.max)
                );
            }
        }
        s.push_str("</table>");
    }
    if let Some(l) = &t.load {
        let seconds: Vec<f64> = l.starts.iter().map(|&c| t.seconds(c)).collect();
        let mut series: Vec<(&str, &[f64])> = vec![("RTOS", &l.rtos)];
        if !l.linux.is_empty() {
            series.push(("Linux", &l.linux));
        }
        let _ = write!(s, "<h2>CPU load</h2>");
        s.push_str(&load_chart(
            &format!("per {} ms window", l.window_ns as f64 / 1e6),
            &series,
            &seconds,
        ));
        let tasks: Vec<(&str, &[f64])> = l.tasks.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        s.push_str(&load_chart("RTOS tasks, of the RTOS's core", &tasks, &seconds));
    }
    if !t.interference.is_empty() {
        s.push_str(
            "<h2>The worst jobs, and what Linux ran meanwhile</h2><table><tr><th>task</th><th>ended at (s)</th>\
             <th>response</th><th>missed</th><th>Linux busy</th><th>Linux tasks</th><th>RTOS ticks</th></tr>",
        );
        for w in t.interference.iter().take(50) {
            let tasks: Vec<String> = w
                .linux_tasks
                .iter()
                .take(5)
                .map(|(c, p, ns)| format!("{} ({p}) {}", esc(c), us(*ns)))
                .collect();
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{:.6}</td><td>{}</td><td{}>{}</td><td>{} of {}</td><td style=\"text-align:left\">{}</td><td>{}</td></tr>",
                esc(&w.task),
                t.seconds(w.end),
                us(w.response_ns),
                if w.missed { " class=\"miss\"" } else { "" },
                if w.missed { "yes" } else { "" },
                us(w.linux_busy_ns),
                us(w.window_ns),
                tasks.join(", "),
                w.rtos_ticks
            );
        }
        s.push_str("</table>");
    }
    if !t.notes.is_empty() {
        s.push_str("<h2>Notes</h2><ul>");
        for n in &t.notes {
            let _ = write!(s, "<li>{}</li>", esc(n));
        }
        s.push_str("</ul>");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_marks_the_deadline_and_counts_every_value() {
        let svg = histogram("T<1>", &[100, 200, 200, 4_000], Some(2_000));
        assert!(svg.contains("T&lt;1&gt;"), "titles are escaped");
        assert!(svg.contains("deadline 2.0 us"));
        // Bins of 100 ns up to 4 us: 1 + 2 + 1 jobs in three bars.
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("<title>2 jobs</title>"));
        assert!(histogram("empty", &[], None).contains("<svg"));
    }
}
