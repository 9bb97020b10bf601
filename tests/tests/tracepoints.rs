//! Runtime tracepoints end to end, on the real system in QEMU: probes go
//! into the running RTOS, both OSes' ftrace events stream home (the host's
//! trace-cmd judges the file), the
//! merged file shows the paper's picture, and everything is checked against
//! the RTOS's ground-truth context-switch log, QEMU's own address
//! translation (HMP `gva2gpa`) and QEMU's view of guest memory (`xp`).

use guest_probe::symbols::SymbolTable;
use hv_trace_e2e::{build_artifacts, ground_truth, ok, refused, Monitor, System, RTOS_PA_OFFSET, RTOS_VA_OFFSET};
use std::collections::BTreeMap;
use std::path::Path;

/// `[hyp I] VM rtos: probe N at 0xVA (PA 0xPA, ...)` lines: VA → PA.
fn hypervisor_translations(log: &str) -> BTreeMap<u64, u64> {
    let mut m = BTreeMap::new();
    for l in log
        .lines()
        .filter(|l| l.contains("VM rtos: probe") && l.contains("(PA 0x"))
    {
        let va = l.split(" at 0x").nth(1).and_then(|s| s.split_whitespace().next());
        let pa = l.split("(PA 0x").nth(1).and_then(|s| s.split(',').next());
        if let (Some(va), Some(pa)) = (va, pa) {
            m.insert(
                u64::from_str_radix(va, 16).unwrap(),
                u64::from_str_radix(pa, 16).unwrap(),
            );
        }
    }
    m
}

struct Switch {
    ts: u64,
    prev_prio: i64,
    next_prio: i64,
}

fn rtos_switches(dat: &Path) -> Vec<Switch> {
    let trace = trace_convert::Trace::open(dat).unwrap();
    let mut v: Vec<Switch> = trace
        .events()
        .map(|e| e.unwrap())
        .filter(|e| e.name() == "rtos_switch")
        .map(|e| Switch {
            ts: e.int("ts_counter").unwrap() as u64,
            prev_prio: e.int("prev_prio").unwrap(),
            next_prio: e.int("next_prio").unwrap(),
        })
        .collect();
    v.sort_by_key(|s| s.ts);
    v
}

#[test]
fn probes_in_the_running_rtos_trace_both_oses_faithfully() {
    let built = build_artifacts("rtos", &["--ground-truth"]).unwrap();
    let elf_path = built["rtos"].as_str().unwrap().to_string();
    let elf_bytes = std::fs::read(&elf_path).unwrap();
    let elf = SymbolTable::from_elf(&elf_bytes).unwrap();
    let sys = System::start(&["--ground-truth"]).unwrap();

    // --- refused probes: clear message, nothing breaks -------------------------------
    refused(
        sys.hv_trace(&["probe", "add", "OSTCBCur"]).unwrap(),
        "a probe on data",
        "not in an executable section",
    );
    let msr = (0x4010_0000u64..0x4010_0100)
        .step_by(4)
        .map(|ipa| ipa + RTOS_VA_OFFSET)
        .find(|&va| elf.insn_at(va).is_some_and(|i| i & 0xfff0_0000 == 0xd510_0000))
        .expect("the boot code writes system registers");
    refused(
        sys.hv_trace(&["probe", "add", &format!("{msr:#x}")]).unwrap(),
        "a probe on MSR",
        "unsafe",
    );
    refused(
        sys.hv_trace(&["probe", "add", "NoSuchFunction"]).unwrap(),
        "a probe on nothing",
        "no symbol",
    );

    // --- QEMU's own translation of the sites, asked before any probe makes the
    // RTOS's core spend time in the hypervisor (QEMU translates in the
    // core's current regime) --------------------------------------------------------
    let sites = ["OSCtxSw", "OSIntCtxSw", "OSTimeDly", "OSTimeTick"];
    // Linux's kernel messages share the UART with the hypervisor's log: keep
    // them off the console so the log lines read below stay whole.
    ok(sys.hv_trace(&["exec", "dmesg -n 1"]).unwrap(), "dmesg -n 1");
    let mut mon = Monitor::connect(sys.path()).unwrap();
    let mut qemu_pa = BTreeMap::new();
    for site in sites {
        let va = elf.lookup(site)[0].addr;
        qemu_pa.insert(va, mon.gva2gpa(1, va).unwrap());
    }

    // --- probes go in at run time ---------------------------------------------------
    for site in sites {
        ok(
            sys.hv_trace(&["probe", "add", site]).unwrap(),
            &format!("probe add {site}"),
        );
    }
    refused(
        sys.hv_trace(&["probe", "add", "OSCtxSw"]).unwrap(),
        "a second probe on OSCtxSw",
        "refused",
    );
    let list = ok(sys.hv_trace(&["probe", "list"]).unwrap(), "probe list");
    assert_eq!(list.lines().filter(|l| l.contains("vm=1")).count(), 4, "{list}");

    // --- our two-stage translation agrees with QEMU's ------------------------------
    let ours = hypervisor_translations(&std::fs::read_to_string(sys.path().join("console.log")).unwrap());
    assert_eq!(
        ours, qemu_pa,
        "the hypervisor's VA -> PA (left) vs QEMU's gva2gpa (right)"
    );
    for (&va, &pa) in &ours {
        assert_eq!(pa, va - RTOS_VA_OFFSET + RTOS_PA_OFFSET, "the RTOS window is linear");
    }

    // --- both OSes recorded, streamed home ----------------------------------------------
    // Kept after the run (target/e2e/...) so a failure can be looked into.
    let out_path = hv_trace_e2e::repo_root().join("target/e2e/tracepoints");
    let _ = std::fs::remove_dir_all(&out_path);
    std::fs::create_dir_all(&out_path).unwrap();
    let out = out_path.to_str().unwrap();
    ok(
        sys.hv_trace(&["record", "--duration", "6", "--out", out]).unwrap(),
        "record",
    );
    let guest = out_path.join("guest.dat");
    let stats = ok(
        sys.hv_trace(&["exec", "cat", "/sys/kernel/hvtrace/stats"]).unwrap(),
        "stats",
    );

    // --- removal restores the exact bytes; the RTOS carries on --------------------------
    for site in ["OSTimeDly", "OSTimeTick"] {
        ok(
            sys.hv_trace(&["probe", "remove", site]).unwrap(),
            &format!("probe remove {site}"),
        );
        let va = elf.lookup(site)[0].addr;
        let pa = va - RTOS_VA_OFFSET + RTOS_PA_OFFSET;
        let now = mon.read_phys(pa, 4).unwrap();
        assert_eq!(
            u32::from_le_bytes(now[..4].try_into().unwrap()),
            elf.insn_at(va).unwrap(),
            "{site} restored"
        );
    }
    for site in ["OSCtxSw", "OSIntCtxSw"] {
        let pa = elf.lookup(site)[0].addr - RTOS_VA_OFFSET + RTOS_PA_OFFSET;
        let word = u32::from_le_bytes(mon.read_phys(pa, 4).unwrap()[..4].try_into().unwrap());
        assert_eq!(word & 0xffe0_001f, 0xd400_0002, "{site} still carries its HVC");
    }
    let log_va = elf.lookup("OSGtLog")[0].addr;
    let gt = ground_truth(&mut mon, log_va).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let later = ground_truth(&mut mon, log_va).unwrap();
    assert!(
        later.len() > gt.len(),
        "the RTOS keeps switching after probes were removed"
    );

    // --- fidelity against the ground truth ---------------------------------------------
    let recs = rtos_switches(&guest);
    let freq = 62_500_000u64;
    assert!(recs.len() > 100, "{} switches recorded", recs.len());
    let span = recs.last().unwrap().ts - recs[0].ts;
    assert!(
        span >= 5 * freq,
        "recorded {:.2} s of RTOS activity",
        span as f64 / freq as f64
    );
    let gt: Vec<_> = gt.into_iter().filter(|e| e.kind != 2).collect();
    let start = gt
        .iter()
        .position(|e| e.cntvct >= recs[0].ts)
        .expect("ground truth covers the recording");
    let window = &gt[start..];
    assert!(window.len() >= recs.len(), "ground truth shorter than the recording");
    let mut max_lag = 0;
    for (i, (r, g)) in recs.iter().zip(window).enumerate() {
        assert_eq!(
            (r.prev_prio, r.next_prio),
            (i64::from(g.prev), i64::from(g.next)),
            "switch {i}: recorded vs ground truth"
        );
        // Our record is stamped when the probe fires, at OSCtxSw/OSIntCtxSw's
        // entry; the RTOS stamps its log a few instructions later.
        assert!(
            g.cntvct >= r.ts && g.cntvct - r.ts < freq / 100,
            "switch {i}: ground truth {} vs probe {}",
            g.cntvct,
            r.ts
        );
        max_lag = max_lag.max(g.cntvct - r.ts);
    }
    assert!(stats.contains("drops 0"), "no drops at the default load:\n{stats}");

    // --- our reader agrees with trace-cmd on the file the stream assembled -------------
    let ours = out_path.join("guest.txt");
    ok(
        hv_trace_e2e::hv_trace(
            &[
                "export",
                "export",
                guest.to_str().unwrap(),
                "-o",
                ours.to_str().unwrap(),
                "--format",
                "text",
            ],
            std::time::Duration::from_secs(300),
        )
        .unwrap(),
        "export guest.dat as text",
    );
    let theirs = std::process::Command::new("trace-cmd")
        .arg("report")
        .arg(&guest)
        .output()
        .unwrap();
    assert!(
        std::fs::read(&ours).unwrap() == theirs.stdout,
        "our text of guest.dat differs from trace-cmd report's (see {})",
        ours.display()
    );

    // --- the paper picture, judged by the host's trace-cmd --------------------------
    let merged = out_path.join("merged.dat");
    let m = hv_trace_e2e::hv_trace(
        &[
            "export",
            "merge",
            guest.to_str().unwrap(),
            "-o",
            merged.to_str().unwrap(),
        ],
        std::time::Duration::from_secs(300),
    )
    .unwrap();
    ok(m, "merge");
    let report = std::process::Command::new("trace-cmd")
        .arg("report")
        .arg(&merged)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&report.stdout).into_owned();
    for t in ["RTOS-Task1", "RTOS-Task2", "RTOS-Task3", "RTOS-Task4"] {
        assert!(
            report
                .lines()
                .any(|l| l.contains("[001]") && l.contains("sched_switch") && l.contains(t)),
            "{t} missing from CPU1's sched_switch in trace-cmd report"
        );
    }
    assert!(
        report
            .lines()
            .any(|l| l.contains("[000]") && l.contains("sched_switch")),
        "Linux on CPU0"
    );
    // Both OSes interleave in time order: CPU0 events between CPU1 events
    // (runs of either collapsed: how many Linux switches fall between two
    // RTOS switches depends on what Linux is doing).
    let mut cpus: Vec<bool> = report
        .lines()
        .filter(|l| l.contains("sched_switch"))
        .map(|l| l.contains("[001]"))
        .collect();
    cpus.dedup();
    assert!(
        cpus.windows(3).any(|w| w == [true, false, true]),
        "the two OSes are not interleaved"
    );

    // Jobs: from switch-in to the switch-out that blocks (a preempted run
    // resumes the same job), measured twice over the same switches: with the
    // merged file's timestamps (what a user sees) and with the RTOS's own
    // ground-truth stamps. The first job of each task may be cut by the start
    // of the recording: it is left out.
    let _ = std::fs::copy(sys.path().join("console.log"), out_path.join("console.log"));
    let merged_trace = trace_convert::Trace::open(&merged).unwrap();
    let cpu1: Vec<(u64, String, bool)> = merged_trace
        .events()
        .map(|e| e.unwrap())
        .filter(|e| e.cpu == 1 && e.name() == "sched_switch")
        .map(|e| {
            (
                e.ts_ns,
                e.str("next_comm").unwrap().to_string(),
                e.int("prev_state").unwrap_or(0) != 0,
            )
        })
        .collect();
    assert_eq!(
        cpu1.len(),
        recs.len(),
        "merged CPU1 switches vs guest.dat's rtos_switch"
    );
    let traced = jobs(cpu1.iter().map(|(ts, next, blocked)| (*ts, next.as_str(), *blocked)));
    let truth = jobs(
        cpu1.iter()
            .zip(window)
            .map(|((_, next, blocked), g)| (g.cntvct * 16, next.as_str(), *blocked)), // 62.5 MHz: 16 ns
    );
    // The per-switch lag is bounded above; a job's length differs from the
    // truth by at most one lag per run it is made of.
    let max_lag_ns = max_lag * 16;
    for (task, jobs) in &traced {
        let truth = &truth[task];
        assert_eq!(jobs.len(), truth.len(), "{task}: jobs traced vs ground truth");
        for (i, (j, g)) in jobs.iter().zip(truth).enumerate() {
            assert!(
                j.ns.abs_diff(g.ns) <= max_lag_ns * j.runs,
                "{task} job {i}: traced {} ns in {} runs, ground truth {} ns",
                j.ns,
                j.runs,
                g.ns
            );
        }
    }
    // The paper's picture: each task does twice the work of the one before.
    // Under QEMU's emulation the host only ever adds time to a job (a
    // descheduled vCPU thread, the other vCPU's load), so the shortest job of
    // each task is its work measured with the least disturbance; medians
    // drift with the host's load (medians 1.9/2.3/3.6 with the host's two
    // cores busy, shortest jobs 1.94/2.00/2.03).
    let sorted = |m: &BTreeMap<String, Vec<Job>>, t: &str| {
        let mut v: Vec<u64> = m[t].iter().map(|j| j.ns).collect();
        assert!(v.len() >= 50, "{t}: only {} jobs", v.len());
        v.sort_unstable();
        v
    };
    let mut shortest = Vec::new();
    for i in 1..=4 {
        let t = format!("RTOS-Task{i}");
        let (a, b) = (sorted(&traced, &t), sorted(&truth, &t));
        eprintln!(
            "{t}: job p0/p10/p50/p90 traced {:?} us, ground truth {:?} us",
            [0, 10, 50, 90].map(|p| a[a.len() * p / 100] / 1000),
            [0, 10, 50, 90].map(|p| b[b.len() * p / 100] / 1000)
        );
        shortest.push(a[0] as f64);
    }
    eprintln!("max probe-to-ground-truth lag {max_lag} ticks; {} switches", recs.len());
    for (i, w) in shortest.windows(2).enumerate() {
        let r = w[1] / w[0];
        assert!(
            (1.7..=2.3).contains(&r),
            "shortest jobs: Task{}/Task{} = {r:.2}, expected 2.0 ± 0.3",
            i + 2,
            i + 1
        );
    }
}

/// A task's job: its length and the number of runs it was cut into.
struct Job {
    ns: u64,
    runs: u64,
}

/// Jobs per task from (time, next task, outgoing task blocked) switches.
fn jobs<'a>(switches: impl Iterator<Item = (u64, &'a str, bool)>) -> BTreeMap<String, Vec<Job>> {
    let mut done: BTreeMap<String, Vec<Job>> = BTreeMap::new();
    let mut open: BTreeMap<String, (Job, bool)> = BTreeMap::new(); // so far, complete job?
    let mut running: Option<(&str, u64)> = None;
    for (ts, next, blocked) in switches {
        if let Some((task, start)) = running.take() {
            let (job, whole) = open.entry(task.to_string()).or_insert((Job { ns: 0, runs: 0 }, false));
            job.ns += ts - start;
            job.runs += 1;
            if blocked {
                let job = std::mem::replace(job, Job { ns: 0, runs: 0 });
                if *whole {
                    done.entry(task.to_string()).or_default().push(job);
                }
                *whole = true;
            }
        }
        running = Some((next, ts));
    }
    done
}

#[test]
fn an_undersized_ring_counts_drops_instead_of_corrupting() {
    let sys = System::start(&["--ring-order", "4"]).unwrap();
    ok(sys.hv_trace(&["probe", "add", "OSCtxSw"]).unwrap(), "probe add");
    ok(sys.hv_trace(&["probe", "add", "OSIntCtxSw"]).unwrap(), "probe add");
    ok(
        sys.hv_trace(&["exec", "echo 1 > /sys/kernel/hvtrace/enable"]).unwrap(),
        "enable",
    );
    // Keep Linux's drain thread off the CPU for a while: records pile up.
    ok(
        sys.hv_trace(&["exec", "echo 20000 > /sys/kernel/hvtrace/test_emit"])
            .unwrap(),
        "test_emit",
    );
    let stats = ok(
        sys.hv_trace(&["exec", "cat", "/sys/kernel/hvtrace/stats"]).unwrap(),
        "stats",
    );
    let drops: u64 = stats
        .split_whitespace()
        .skip_while(|w| *w != "drops")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no drops figure in:\n{stats}"));
    assert!(drops > 0, "a 16-record ring must drop:\n{stats}");
    assert!(!stats.contains("resyncs 1"), "no corruption:\n{stats}");
}

/// A probe on Linux's own context switch names Linux's tasks (the Linux
/// profile from vmlinux's DWARF, `current` from SP_EL0), and recording with
/// it in place does not feed on itself.
#[test]
fn a_probe_on_linuxs_context_switch_names_linux_tasks() {
    let sys = System::start(&[]).unwrap();
    ok(
        sys.hv_trace(&["probe", "add", "__switch_to", "--vm", "linux"]).unwrap(),
        "probe add __switch_to",
    );
    let out_dir = tempfile::tempdir().unwrap();
    ok(
        sys.hv_trace(&["record", "--duration", "3", "--out", out_dir.path().to_str().unwrap()])
            .unwrap(),
        "record",
    );
    let trace = trace_convert::Trace::open(out_dir.path().join("guest.dat")).unwrap();
    let comms: std::collections::BTreeSet<String> = trace
        .events()
        .map(|e| e.unwrap())
        .filter(|e| e.name() == "rtos_probe")
        .map(|e| e.str("comm").unwrap_or("").to_string())
        .collect();
    assert!(
        comms.contains("hvtrace-stream") && comms.contains("swapper/0"),
        "Linux task names: {comms:?}"
    );
}
