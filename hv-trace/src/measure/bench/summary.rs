//! The bench's results: samples, medians and spreads per (test, mode), the
//! overheads against a reference mode, and the table, CSV files and SVG chart
//! made of them.

use super::plan::{Mode, Test, TESTS};
use regex::Regex;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub test: String,
    pub mode: Mode,
    pub run: u32,
    /// What the workload reported (loops/s for the built-in ones).
    pub value: f64,
    pub score: f64,
    pub seconds: f64,
    /// Hits of the mode's instrumentation during the run.
    pub hits: Option<u64>,
}

pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// One (test, mode) cell of the result.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub score: f64,
    pub min: f64,
    pub max: f64,
    /// (max − min) ÷ median, in percent.
    pub spread_pct: f64,
    pub hits_per_s: Option<f64>,
}

/// Score loss of `score` against `base`, in percent (positive = slower).
pub fn overhead_pct(score: f64, base: f64) -> f64 {
    (base - score) / base * 100.0
}

/// Estimated cost of one hit: the fraction of time lost to the
/// instrumentation (1 − score/base) divided by the hits per second.
pub fn cost_per_hit_us(score: f64, base: f64, hits_per_s: f64) -> Option<f64> {
    (hits_per_s > 0.0 && base > 0.0).then(|| (1.0 - score / base) / hits_per_s * 1e6)
}

/// Whether two cells' medians differ by less than their half-spreads
/// together (the difference is not a measurement).
pub fn within_noise(a: &Cell, b: &Cell) -> bool {
    let noise = (a.max - a.min) / 2.0 + (b.max - b.min) / 2.0;
    (a.score - b.score).abs() <= noise
}

/// Results by test, then mode, in the order the plan names them.
pub struct Summary {
    pub tests: Vec<String>,
    pub modes: Vec<Mode>,
    pub runs: u32,
    pub cells: BTreeMap<(String, Mode), Cell>,
    /// Modes that could not be measured, and why.
    pub failed: BTreeMap<Mode, String>,
}

impl Summary {
    pub fn new(tests: Vec<String>, modes: Vec<Mode>, runs: u32, samples: &[Sample]) -> Self {
        let mut cells = BTreeMap::new();
        for t in &tests {
            for &m in &modes {
                let mine: Vec<&Sample> = samples.iter().filter(|s| &s.test == t && s.mode == m).collect();
                if mine.is_empty() {
                    continue;
                }
                let scores: Vec<f64> = mine.iter().map(|s| s.score).collect();
                let score = median(&scores);
                let min = scores.iter().copied().fold(f64::INFINITY, f64::min);
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let rates: Vec<f64> = mine
                    .iter()
                    .filter_map(|s| s.hits.map(|h| h as f64 / s.seconds.max(1e-9)))
                    .collect();
                cells.insert(
                    (t.clone(), m),
                    Cell {
                        score,
                        min,
                        max,
                        spread_pct: if score > 0.0 { (max - min) / score * 100.0 } else { 0.0 },
                        hits_per_s: (!rates.is_empty()).then(|| median(&rates)),
                    },
                );
            }
        }
        Summary {
            tests,
            modes,
            runs,
            cells,
            failed: BTreeMap::new(),
        }
    }

    pub fn cell(&self, test: &str, mode: Mode) -> Option<&Cell> {
        self.cells.get(&(test.to_string(), mode))
    }

    fn overhead(&self, test: &str, mode: Mode, base: Mode) -> Option<f64> {
        let (c, b) = (self.cell(test, mode)?, self.cell(test, base)?);
        Some(overhead_pct(c.score, b.score))
    }

    /// The printed report: scores, overheads, per-hit costs.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "score = loops/s ÷ UnixBench baseline × 10; median of {} run(s), ± half the min–max spread",
            self.runs
        );
        let _ = write!(o, "{:<10}", "test");
        for m in &self.modes {
            let _ = write!(o, " {:>18}", m.name());
        }
        o.push('\n');
        for t in &self.tests {
            let _ = write!(o, "{t:<10}");
            for &m in &self.modes {
                let text = match self.cell(t, m) {
                    Some(c) => format!("{:.1} ±{:.1}%", c.score, c.spread_pct / 2.0),
                    None if self.failed.contains_key(&m) => "failed".into(),
                    None => "-".into(),
                };
                let _ = write!(o, " {text:>18}");
            }
            o.push('\n');
        }
        let others: Vec<Mode> = self.modes.iter().copied().filter(|m| *m != Mode::Native).collect();
        if !others.is_empty() && (self.modes.contains(&Mode::Native) || self.modes.contains(&Mode::Hyp)) {
            let _ = writeln!(o, "\noverhead (score loss, positive = slower): vs hyp / vs native");
            let _ = write!(o, "{:<10}", "test");
            for m in &others {
                let _ = write!(o, " {:>18}", m.name());
            }
            o.push('\n');
            for t in &self.tests {
                let _ = write!(o, "{t:<10}");
                for &m in &others {
                    let pct = |b: Mode| match self.overhead(t, m, b) {
                        Some(v) if m != b => format!("{v:+.1}%"),
                        _ => "-".into(),
                    };
                    let _ = write!(o, " {:>18}", format!("{} / {}", pct(Mode::Hyp), pct(Mode::Native)));
                }
                o.push('\n');
            }
        }
        for (m, why) in &self.failed {
            let _ = writeln!(o, "\n{} failed: {why}", m.name());
        }
        let built_in: Vec<&Test> = TESTS
            .iter()
            .filter(|t| self.tests.iter().any(|n| n == t.name))
            .collect();
        if !built_in.is_empty() {
            let _ = writeln!(o, "\nbaselines (UnixBench index, score 10):");
            for t in built_in {
                let _ = writeln!(o, "  {:<9} {:>9} {}", t.name, t.baseline, t.what);
            }
        }
        let hit_modes: Vec<Mode> = self
            .modes
            .iter()
            .copied()
            .filter(|m| m.hit_source().is_some())
            .collect();
        if !hit_modes.is_empty() && self.modes.contains(&Mode::Hyp) {
            let _ = writeln!(
                o,
                "\nper hit: hits/s during the run; est. cost = (1 − score/hyp score) ÷ hits/s"
            );
            let _ = writeln!(
                o,
                "{:<10} {:<12} {:>12} {:>14}  hits are",
                "test", "mode", "hits/s", "cost/hit"
            );
            for t in &self.tests {
                for &m in &hit_modes {
                    let (Some(c), Some(base)) = (self.cell(t, m), self.cell(t, Mode::Hyp)) else {
                        continue;
                    };
                    let Some(rate) = c.hits_per_s else { continue };
                    let cost = match cost_per_hit_us(c.score, base.score, rate) {
                        // A difference inside the runs' own spread says nothing.
                        Some(_) if within_noise(c, base) => "in noise".into(),
                        Some(us) => format!("{us:.2} us"),
                        None => "-".into(),
                    };
                    let _ = writeln!(
                        o,
                        "{t:<10} {:<12} {rate:>12.0} {cost:>14}  {}",
                        m.name(),
                        m.hit_source().unwrap_or_default()
                    );
                }
            }
        }
        o
    }

    /// summary.csv: one line per (test, mode).
    pub fn csv(&self) -> String {
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
        let mut w = csv_writer();
        row(
            &mut w,
            [
                "test",
                "mode",
                "runs",
                "median_score",
                "min_score",
                "max_score",
                "spread_pct",
                "overhead_vs_native_pct",
                "overhead_vs_hyp_pct",
                "hits_per_s",
                "cost_per_hit_us",
            ]
            .map(String::from),
        );
        for t in &self.tests {
            for &m in &self.modes {
                let Some(c) = self.cell(t, m) else { continue };
                let base = self.cell(t, Mode::Hyp);
                let cost = c
                    .hits_per_s
                    .zip(base)
                    .and_then(|(rate, b)| cost_per_hit_us(c.score, b.score, rate));
                row(
                    &mut w,
                    [
                        t.clone(),
                        m.name().to_string(),
                        self.runs.to_string(),
                        format!("{:.4}", c.score),
                        format!("{:.4}", c.min),
                        format!("{:.4}", c.max),
                        format!("{:.3}", c.spread_pct),
                        opt(self.overhead(t, m, Mode::Native).filter(|_| m != Mode::Native)),
                        opt(self.overhead(t, m, Mode::Hyp).filter(|_| m != Mode::Hyp)),
                        opt(c.hits_per_s),
                        opt(cost),
                    ],
                );
            }
        }
        finish(w)
    }

    /// A grouped bar chart like the paper's Fig. 13: per test, each mode's
    /// score relative to the reference mode (native, or hyp without it), with
    /// min–max whiskers.
    pub fn svg(&self) -> String {
        let reference = if self.modes.contains(&Mode::Native) {
            Mode::Native
        } else {
            self.modes[0]
        };
        let colours = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];
        let (left, top, plot_h, group_w) = (60.0, 40.0, 260.0, 30.0 + 16.0 * self.modes.len() as f64);
        let width = left + group_w * self.tests.len().max(1) as f64 + 20.0;
        let height = top + plot_h + 90.0;
        let rel = |t: &str, m: Mode, v: fn(&Cell) -> f64| -> Option<f64> {
            let r = self.cell(t, reference)?.score;
            let c = self.cell(t, m)?;
            (r > 0.0).then(|| v(c) / r * 100.0)
        };
        let mut top_value: f64 = 100.0;
        for t in &self.tests {
            for &m in &self.modes {
                if let Some(v) = rel(t, m, |c| c.max) {
                    top_value = top_value.max(v);
                }
            }
        }
        let y_max = (top_value / 20.0).ceil() * 20.0;
        let y = |v: f64| top + plot_h - v / y_max * plot_h;
        let mut o = String::new();
        let _ = writeln!(
            o,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            o,
            r#"<text x="{left}" y="20" font-size="13">hv-trace bench: score relative to {} (%), median of {} run(s), whiskers min–max</text>"#,
            reference.name(),
            self.runs
        );
        let mut tick = 0.0;
        while tick <= y_max + 1e-9 {
            let yy = y(tick);
            let _ = writeln!(
                o,
                r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{tick:.0}</text>"##,
                width - 20.0,
                left - 4.0,
                yy + 4.0
            );
            tick += 20.0;
        }
        for (i, t) in self.tests.iter().enumerate() {
            let x0 = left + group_w * i as f64 + 15.0;
            for (j, &m) in self.modes.iter().enumerate() {
                let (Some(v), Some(lo), Some(hi)) =
                    (rel(t, m, |c| c.score), rel(t, m, |c| c.min), rel(t, m, |c| c.max))
                else {
                    continue;
                };
                let x = x0 + 16.0 * j as f64;
                let colour = colours[Mode::ALL.iter().position(|a| *a == m).unwrap_or(0) % colours.len()];
                let _ = writeln!(
                    o,
                    r#"<rect x="{x:.1}" y="{:.1}" width="14" height="{:.1}" fill="{colour}"><title>{t} {}: {v:.1}%</title></rect>"#,
                    y(v),
                    (y(0.0) - y(v)).max(0.0),
                    m.name()
                );
                let _ = writeln!(
                    o,
                    r#"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="black"/>"#,
                    x + 7.0,
                    y(lo),
                    y(hi)
                );
            }
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{t}</text>"#,
                x0 + 8.0 * self.modes.len() as f64,
                y(0.0) + 16.0
            );
        }
        let _ = writeln!(
            o,
            r#"<line x1="{left}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="black"/>"#,
            y(0.0),
            width - 20.0
        );
        for (j, &m) in self.modes.iter().enumerate() {
            let colour = colours[Mode::ALL.iter().position(|a| *a == m).unwrap_or(0) % colours.len()];
            let (x, yy) = (left + 80.0 * j as f64, y(0.0) + 40.0);
            let _ = writeln!(
                o,
                r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="{yy:.1}">{}</text>"#,
                yy - 10.0,
                x + 16.0,
                m.name()
            );
        }
        o.push_str("</svg>\n");
        o
    }
}

/// The hypervisor's own measure of its probe handler, from the lines it
/// logs when a probe is removed ("VM linux: probe 1 at 0x… removed after N
/// hits; handler cost in counter ticks min A median <B p99 <C max D") and the
/// counter frequency Linux logs: per VM, hits and the hits-weighted median
/// bound and worst p99 bound, in microseconds.
pub fn handler_costs(console: &str) -> BTreeMap<String, (u64, f64, f64)> {
    let re = Regex::new(
        r"VM (\w+): probe \d+ at 0x[0-9a-f]+ removed after (\d+) hits; handler cost in counter ticks min \d+ median <(\d+) p99 <(\d+)",
    )
    .expect("a valid pattern");
    let mhz = Regex::new(r"running at ([0-9.]+)MHz")
        .expect("a valid pattern")
        .captures(console)
        .and_then(|c| c[1].parse::<f64>().ok())
        .unwrap_or(62.5);
    let mut by_vm: BTreeMap<String, (u64, f64, f64)> = BTreeMap::new();
    for c in re.captures_iter(console) {
        let (Ok(hits), Ok(median), Ok(p99)) = (c[2].parse::<u64>(), c[3].parse::<f64>(), c[4].parse::<f64>()) else {
            continue;
        };
        let e = by_vm.entry(c[1].to_string()).or_default();
        e.0 += hits;
        e.1 += hits as f64 * median / mhz;
        e.2 = e.2.max(p99 / mhz);
    }
    for e in by_vm.values_mut() {
        e.1 /= e.0.max(1) as f64;
    }
    by_vm
}

/// samples.csv: every measurement.
pub fn samples_csv(samples: &[Sample]) -> String {
    let mut w = csv_writer();
    row(
        &mut w,
        ["test", "mode", "run", "value", "score", "seconds", "hits"].map(String::from),
    );
    for s in samples {
        row(
            &mut w,
            [
                s.test.clone(),
                s.mode.name().to_string(),
                s.run.to_string(),
                format!("{:.4}", s.value),
                format!("{:.4}", s.score),
                format!("{:.3}", s.seconds),
                s.hits.map(|h| h.to_string()).unwrap_or_default(),
            ],
        );
    }
    finish(w)
}

/// A CSV writer into memory (the `csv` crate quotes what needs it, such as a
/// `--cmd` workload's name with a comma).
fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(Vec::new())
}

fn row<const N: usize>(w: &mut csv::Writer<Vec<u8>>, fields: [String; N]) {
    // Writing into a Vec cannot fail.
    let _ = w.write_record(&fields);
}

fn finish(w: csv::Writer<Vec<u8>>) -> String {
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}
