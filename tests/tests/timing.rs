//! RTOS timing analysis end to end on the paper workload: `hv-trace record
//! --timing` probes the running RTOS, `hv-trace analyze --json` turns the
//! recording into jobs, and each job is checked against the RTOS's
//! ground-truth switch log (written by the RTOS itself, read through QEMU)
//! and against the app's configuration.

use guest_probe::symbols::SymbolTable;
use hv_trace_e2e::{build_artifacts, ground_truth, ok, refused, GtSwitch, Monitor, System};
use std::collections::BTreeMap;
use trace_convert::probe_values::{self, ProbeValue};

/// The paper app's configuration (guests/ucos-ii/apps/paper/app.c): tasks at
/// priorities 10..13, released together every 50 ticks of 1 ms, each doing
/// twice the work of the one before, from 1 ms.
const FIRST_PRIO: u8 = 10;
const PERIOD_TICKS: u32 = 50;
const TICK_NS: u64 = 1_000_000;
const WORK_NS: [u64; 4] = [1_000_000, 2_000_000, 4_000_000, 8_000_000];
/// The counter's rate (CNTFRQ of QEMU's virt machine): ns per count.
const NS_PER_COUNT: u64 = 16;

/// A job as the ground truth shows it.
#[derive(Debug)]
struct GtJob {
    /// `OSTime` at its first run.
    start_ostime: u32,
    end: u64,
    exec: u64,
}

/// The paper tasks' jobs from the ground-truth log, by priority: a job runs
/// from its first switch in to the switch at which it blocks (`OSCtxSw`, kind
/// 0: the paper tasks block only to wait for their next release).
fn gt_jobs(gt: &[GtSwitch]) -> BTreeMap<u8, Vec<GtJob>> {
    let paper = FIRST_PRIO..FIRST_PRIO + 4;
    let mut open: BTreeMap<u8, (u32, u64)> = BTreeMap::new(); // prio -> (ostime at start, exec)
    let mut running: Option<(u8, u64)> = None;
    let mut jobs: BTreeMap<u8, Vec<GtJob>> = BTreeMap::new();
    for g in gt {
        if let Some((prio, since)) = running.take() {
            if let Some(job) = open.get_mut(&prio) {
                job.1 += g.cntvct - since;
            }
            if g.kind == 0 && paper.contains(&prio) {
                if let Some((start_ostime, exec)) = open.remove(&prio) {
                    jobs.entry(prio).or_default().push(GtJob {
                        start_ostime,
                        end: g.cntvct,
                        exec,
                    });
                }
            }
        }
        if paper.contains(&g.next) {
            open.entry(g.next).or_insert((g.ostime, 0));
        }
        running = Some((g.next, g.cntvct));
    }
    jobs
}

/// When the ground truth first shows `OSTime` at `tick` (the switch its tick's
/// handler made, or the first after it).
fn gt_tick(gt: &[GtSwitch], tick: u32) -> u64 {
    gt[gt.partition_point(|g| g.ostime < tick)..]
        .first()
        .expect("the ground truth covers the recording")
        .cntvct
}

/// `hv-trace record --timing` then `hv-trace analyze --json` into
/// target/e2e/NAME: the printed table, the JSON and the recording.
fn record_and_analyze(sys: &System, name: &str) -> (String, serde_json::Value, std::path::PathBuf) {
    let out_path = hv_trace_e2e::repo_root().join("target/e2e").join(name);
    let _ = std::fs::remove_dir_all(&out_path);
    std::fs::create_dir_all(&out_path).unwrap();
    ok(
        sys.hv_trace(&[
            "record",
            "--timing",
            "--duration",
            "6",
            "--out",
            out_path.to_str().unwrap(),
        ])
        .unwrap(),
        "record --timing",
    );
    let guest = out_path.join("guest.dat");
    let json_path = out_path.join("timing.json");
    let report_path = out_path.join("timing.html");
    let table = ok(
        sys.hv_trace(&[
            "analyze",
            guest.to_str().unwrap(),
            "--json",
            json_path.to_str().unwrap(),
            "--report",
            report_path.to_str().unwrap(),
        ])
        .unwrap(),
        "analyze",
    );
    eprintln!("{table}");
    // The report: a page with a response-time histogram per task (with its
    // deadline), the tick's latency, the load.
    let report = std::fs::read_to_string(&report_path).unwrap();
    for want in [
        "RTOS-Task1 (prio 10)",
        "RTOS-Task4 (prio 13)",
        "deadline ",
        "due → handler",
        "RTOS tasks, of the RTOS",
    ] {
        assert!(report.contains(want), "{want:?} in {}", report_path.display());
    }
    assert!(report.matches("<svg").count() >= 7, "{}", report_path.display());
    let json = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    (table, json, guest)
}

fn num(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[test]
fn jobs_periods_and_response_times_agree_with_the_ground_truth() {
    let built = build_artifacts("rtos", &["--ground-truth"]).unwrap();
    let elf = SymbolTable::from_elf(&std::fs::read(built["rtos"].as_str().unwrap()).unwrap()).unwrap();
    // Guest time counts instructions: the app's work, calibrated at boot,
    // takes its configured guest time whatever the host does meanwhile.
    let sys = System::start(&["--ground-truth", "--icount", "3"]).unwrap();

    let (table, timing, _) = record_and_analyze(&sys, "timing");
    let list = ok(sys.hv_trace(&["probe", "list"]).unwrap(), "probe list");
    for site in ["OSCtxSw", "OSIntCtxSw", "OSTimeTick", "OSTimeDly"] {
        assert!(list.contains(site), "record --timing put a probe on {site}:\n{list}");
    }
    let mut mon = Monitor::connect(sys.path()).unwrap();
    let gt = ground_truth(&mut mon, elf.lookup("OSGtLog")[0].addr).unwrap();
    drop(mon);

    assert!(
        !table.contains("releases need the probes"),
        "record --timing inserted what the analysis needs:\n{table}"
    );
    // The tick timer runs on the host's clock under TCG: a median within 2 %.
    let tick = num(&timing, "tick_ns");
    assert!(
        tick.abs_diff(TICK_NS) <= TICK_NS / 50,
        "ticks {tick} ns apart, configured 1 ms"
    );

    // The tick's interrupt, step by step, as the hypervisor passed it on: one
    // for each tick, each step under a tick at the median.
    let timer = timing["irqs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["irq"] == 27)
        .unwrap_or_else(|| panic!("the virtual timer's interrupts are timed:\n{table}"));
    let (count, ticks) = (num(timer, "count"), num(&timing, "ticks"));
    assert!(count.abs_diff(ticks) <= 2, "{count} timer interrupts for {ticks} ticks");
    for step in [
        "due_to_el2_ns",
        "el2_to_injected_ns",
        "injected_to_handler_ns",
        "due_to_handler_ns",
    ] {
        let p50 = num(&timer[step], "p50");
        assert!(0 < p50 && p50 < TICK_NS, "{step}: median {p50} ns");
    }
    assert!(
        num(&timer["due_to_handler_ns"], "p50") >= num(&timer["due_to_el2_ns"], "p50"),
        "the whole way in takes longer than its first step"
    );
    assert!(
        table.contains("27 (tick)"),
        "the table shows the tick's latency:\n{table}"
    );

    let truth = gt_jobs(&gt);
    let jobs = timing["jobs"].as_array().unwrap();
    let mut worst = BTreeMap::new();
    let mut medians = Vec::new();
    for i in 0..4u8 {
        let prio = FIRST_PRIO + i;
        let name = format!("RTOS-Task{}", i + 1);
        let row = timing["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} has a row:\n{table}"));
        assert_eq!(num(row, "prio"), u64::from(prio));
        assert!(num(row, "jobs") >= 100, "{name}: {} jobs in 6 s", num(row, "jobs"));
        // Period: the app's 50 ticks, exactly (releases are the ticks' own times).
        let period = num(row, "period_ns");
        assert!(
            period.abs_diff(u64::from(PERIOD_TICKS) * TICK_NS) <= TICK_NS,
            "{name}: period {period} ns"
        );
        assert_eq!(num(row, "misses"), 0, "{name}: 30 % load misses nothing");
        // Execution time: the app's work, an iteration count calibrated at
        // boot against guest time (instructions, under -icount): the median
        // within one tick of the configured work.
        let exec = num(&row["exec_ns"], "p50");
        let work = WORK_NS[usize::from(i)];
        assert!(
            exec.abs_diff(work) <= TICK_NS,
            "{name}: median job {exec} ns of CPU, configured {work} ns"
        );
        medians.push(exec as f64);

        // Job by job against the ground truth: the same jobs (each ends at a
        // switch the log has), the same CPU time, the same response time.
        let mine: Vec<&serde_json::Value> = jobs.iter().filter(|j| j["task"] == name.as_str()).collect();
        let theirs = &truth[&prio];
        let first = theirs
            .iter()
            .position(|g| g.end.abs_diff(num(mine[0], "end")) * NS_PER_COUNT <= TICK_NS)
            .unwrap_or_else(|| panic!("{name}: the first job's end is in the ground truth"));
        let theirs = &theirs[first..];
        assert!(
            theirs.len() >= mine.len(),
            "{name}: the ground truth covers the recording"
        );
        let (mut d_end, mut d_exec, mut d_resp) = (Vec::new(), Vec::new(), Vec::new());
        for (k, (j, g)) in mine.iter().zip(theirs).enumerate() {
            let release_tick = num(j, "release_tick") as u32;
            // Released at the app's tick (a multiple of 50, or one later when a
            // tick fell between the app's OSTimeGet and its OSTimeDly), not
            // after it started.
            assert!(
                release_tick <= g.start_ostime && g.start_ostime - release_tick < PERIOD_TICKS,
                "{name} job {k}: released at tick {release_tick}, started at tick {}",
                g.start_ostime
            );
            d_end.push(num(j, "end").abs_diff(g.end) * NS_PER_COUNT);
            d_exec.push(num(j, "exec_ns").abs_diff(g.exec * NS_PER_COUNT));
            let gt_resp = (g.end - gt_tick(&gt, release_tick)) * NS_PER_COUNT;
            d_resp.push(num(j, "response_ns").abs_diff(gt_resp));
        }
        let [d_end, d_exec, d_resp] = [d_end, d_exec, d_resp].map(|mut v| {
            v.sort_unstable();
            (v[v.len() / 2], v[v.len() - 1])
        });
        assert!(d_end.1 <= TICK_NS, "{name}: job ends differ by up to {} ns", d_end.1);
        assert!(
            d_exec.1 <= TICK_NS,
            "{name}: execution times differ by up to {} ns",
            d_exec.1
        );
        assert!(
            d_resp.1 <= TICK_NS,
            "{name}: response times differ by up to {} ns",
            d_resp.1
        );
        // No job left out: the ground truth has no more jobs ending in the span.
        let last_end = num(mine[mine.len() - 1], "end");
        let in_span = theirs
            .iter()
            .take_while(|g| g.end <= last_end + TICK_NS / NS_PER_COUNT)
            .count();
        assert_eq!(
            mine.len(),
            in_span,
            "{name}: jobs the analysis found vs the ground truth's"
        );
        worst.insert(name, (mine.len(), d_end, d_exec, d_resp));
    }
    // And relative to each other as configured: each task twice the one before.
    for (i, w) in medians.windows(2).enumerate() {
        let r = w[1] / w[0];
        assert!(
            (1.7..=2.3).contains(&r),
            "median jobs Task{}/Task{} = {r:.2}, configured 2",
            i + 2,
            i + 1
        );
    }
    eprintln!(
        "per task: jobs, then (median, largest) difference from the ground truth of job ends, execution times, response times in ns: {worst:?}"
    );

    // --- the overload: Task4 overruns on purpose, the analysis finds each one ----------
    refused(
        sys.hv_trace(&["set", "OSCtxSw", "1"]).unwrap(),
        "setting code",
        "not a variable",
    );
    refused(
        sys.hv_trace(&["set", "App_Overload", "0x100000000"]).unwrap(),
        "a value too large",
        "does not fit in 4 bytes",
    );
    ok(
        sys.hv_trace(&["set", "App_Overload", "10"]).unwrap(),
        "set App_Overload 10",
    );
    // The app's own overrun count, as each job leaves it: Task4 calls
    // App_DelayUntil right after counting its job's overrun.
    ok(
        sys.hv_trace(&["probe", "add", "App_DelayUntil overruns=App_Overruns"])
            .unwrap(),
        "probe add App_DelayUntil",
    );
    let (table, timing, guest) = record_and_analyze(&sys, "timing-overload");
    ok(
        sys.hv_trace(&["set", "App_Overload", "0"]).unwrap(),
        "set App_Overload 0",
    );
    let counts: Vec<(u64, u64)> = trace_convert::Trace::open(&guest)
        .unwrap()
        .events()
        .map(|e| e.unwrap())
        .filter(|e| e.name() == "rtos_probe" && e.str("comm") == Some("RTOS-Task4"))
        .filter_map(|e| {
            let what = probe_values::parse(e.str("what").unwrap());
            match (what.label, what.get("overruns")) {
                ("App_DelayUntil", Some(ProbeValue::UInt(n))) => Some((e.int("ts_counter").unwrap() as u64, *n)),
                _ => None,
            }
        })
        .collect();
    let before = |ts: u64| {
        counts
            .iter()
            .take_while(|&&(t, _)| t <= ts)
            .last()
            .unwrap_or_else(|| panic!("an App_DelayUntil hit of Task4 before counter {ts}"))
            .1
    };
    let task4: Vec<&serde_json::Value> = timing["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["task"] == "RTOS-Task4")
        .collect();
    let misses = task4.iter().filter(|j| j["missed"] == true).count() as u64;
    let overruns = before(num(task4[task4.len() - 1], "end")) - before(num(task4[0], "start"));
    eprintln!(
        "overload: {} Task4 jobs, {misses} missed; the app counted {overruns} overruns",
        task4.len()
    );
    assert!(misses >= 5, "every 10th job of Task4 overruns:\n{table}");
    assert_eq!(misses, overruns, "deadline misses found vs the app's own overrun count");
    for t in timing["tasks"].as_array().unwrap() {
        if t["name"] != "RTOS-Task4" && t["name"].as_str().unwrap().starts_with("RTOS-Task") {
            assert_eq!(
                num(t, "misses"),
                0,
                "{}: the higher priorities are untouched",
                t["name"]
            );
        }
    }
    assert!(
        table.contains("missed: RTOS-Task4 job"),
        "the worst jobs are named:\n{table}"
    );
    // The viewer's jobs view finds the same misses and jumps to each.
    let jobs = viewer::app::Jobs::of_file(guest.to_str().unwrap()).unwrap();
    assert_eq!(jobs.misses.len() as u64, misses, "misses in the viewer's jobs view");
    let index = viewer::index::TraceIndex::open(&guest).unwrap();
    let mut app = viewer::app::App::new(std::sync::Arc::new(index));
    let press = |app: &mut viewer::app::App, c: char| {
        app.on_key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char(c),
            crossterm::event::KeyModifiers::NONE,
        ))
    };
    press(&mut app, 'm');
    assert!(app.message.starts_with("deadline miss 1 of "), "{}", app.message);
    let (from, to) = (app.marker_a.unwrap(), app.marker_b.unwrap());
    assert_eq!((from, to), (jobs.misses[0].0, jobs.misses[0].1));
    assert!(to - from > 50_000_000, "a missed job is longer than its 50 ms period");
    press(&mut app, 'm');
    assert!(app.message.starts_with("deadline miss 2 of "), "{}", app.message);
}
