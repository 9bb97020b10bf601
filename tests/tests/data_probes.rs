//! Tracepoints that carry data, end to end on the real system with the RTOS's
//! `sync` app: arguments named from DWARF, globals, strings, a NULL pointer,
//! return probes with `$retval` and durations — each checked against what
//! the app itself does (its constants and its own counters) and the RTOS's
//! ground-truth switch log, in the file Linux's real trace-cmd recorded and
//! in trace-cmd's own report.

use guest_probe::symbols::SymbolTable;
use hv_trace_e2e::{build_artifacts, ground_truth, ok, GtSwitch, Monitor, System};
use std::collections::BTreeMap;
use trace_convert::probe_values::{self, ProbeValue};

/// One `rtos_probe` event: its label, its values (as trace-convert reads
/// them back), the task and its counter time.
#[derive(Debug)]
struct Hit {
    label: String,
    values: BTreeMap<String, ProbeValue>,
    comm: String,
    ts: u64,
}

impl Hit {
    fn num(&self, name: &str) -> u64 {
        match &self.values[name] {
            ProbeValue::UInt(v) => *v,
            v => panic!("{name}={v:?} is not an unsigned number in {self:?}"),
        }
    }

    fn text(&self, name: &str) -> &str {
        match &self.values[name] {
            ProbeValue::Str(s) => s,
            v => panic!("{name}={v:?} is not a string in {self:?}"),
        }
    }
}

fn hits(dat: &std::path::Path) -> Vec<Hit> {
    let trace = trace_convert::Trace::open(dat).unwrap();
    let mut v: Vec<Hit> = trace
        .events()
        .map(|e| e.unwrap())
        .filter(|e| e.name() == "rtos_probe")
        .map(|e| {
            let what = probe_values::parse(e.str("what").expect("rtos_probe has `what`"));
            Hit {
                label: what.label.to_string(),
                values: what.values.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
                comm: e.str("comm").unwrap().to_string(),
                ts: e.int("ts_counter").unwrap() as u64,
            }
        })
        .collect();
    v.sort_by_key(|h| h.ts);
    v
}

/// Each of `returns` (one task's calls of a function that blocks) against the
/// RTOS's ground-truth switch log: the call, from `ts − duration` to `ts`,
/// starts and ends with the task running; where the task left the CPU
/// inside it, the first switch out is its own block (`OSCtxSw`, not a
/// preemption); the time the task ran inside the call (the function's own
/// work and the probes' traps) is small. Returns those times in counter
/// ticks, sorted. (The counter is wall time under TCG: a vCPU thread the
/// host preempts stretches them, hence the loose bound on each.)
fn durations_against_the_ground_truth(returns: &[&Hit], gt: &[GtSwitch], freq: u64) -> Vec<u64> {
    let last = gt.last().expect("the ground-truth log has switches").cntvct;
    assert!(
        returns.last().is_some_and(|h| h.ts < last),
        "the ground-truth log (full after 32,768 switches) covers the recording"
    );
    let running_at = |t: u64| gt.iter().take_while(|g| g.cntvct <= t).last().map(|g| g.next);
    let (mut blocked, mut owns) = (0, vec![]);
    for h in returns {
        let prio = h.num("prio") as u8;
        let t1 = h.ts;
        // The duration is whole ns, truncated: the entry was at most a tick earlier.
        let t0 = t1 - h.num("duration") * freq / 1_000_000_000;
        assert_eq!(running_at(t0), Some(prio), "the task runs when the call starts: {h:?}");
        assert_eq!(running_at(t1), Some(prio), "the task runs when the call returns: {h:?}");
        let inside: Vec<&GtSwitch> = gt.iter().filter(|g| (t0..=t1).contains(&g.cntvct)).collect();
        if let Some(out) = inside.iter().find(|g| g.prev == prio) {
            assert_eq!(out.kind, 0, "the task blocked in the call (OSCtxSw): {h:?} {out:?}");
            blocked += 1;
        }
        let (mut own, mut since) = (0, Some(t0));
        for g in &inside {
            if g.prev == prio {
                own += g.cntvct - since.take().expect("switched out while running");
            }
            if g.next == prio {
                since = Some(g.cntvct);
            }
        }
        own += t1 - since.expect("running at the return");
        assert!(
            own < freq / 100,
            "the call ran {} µs of its {} µs itself: {h:?}",
            own * 1_000_000 / freq,
            (t1 - t0) * 1_000_000 / freq
        );
        owns.push(own);
    }
    assert!(blocked >= 20, "calls that blocked: {blocked} of {}", returns.len());
    owns.sort_unstable();
    assert!(
        owns[owns.len() / 2] < freq / 1000,
        "a call's own time is mostly under 1 ms: {owns:?} ticks"
    );
    owns
}

#[test]
fn data_probes_agree_with_the_sync_apps_own_counters() {
    let app = ["--rtos-app", "sync", "--ground-truth"];
    let built = build_artifacts("rtos", &app).unwrap();
    let elf = SymbolTable::from_elf(&std::fs::read(built["rtos"].as_str().unwrap()).unwrap()).unwrap();
    let sys = System::start(&app).unwrap();
    for spec in [
        // The message is `&items[n & 1]` holding n, posted before Produced++.
        "OSMboxPost pevent->OSEventName:string msg=+0(%x1):u32 produced=Produced",
        // OSEventPtr is NULL for a semaphore: the load through it faults.
        "OSSemPost pevent->OSEventCnt pongs=Pongs link=+0(+8(%x0)):u64",
        // A member through the current-task pointer, beside the record's own $prio.
        "OSTimeDly ticks tcbprio=OSTCBCur->OSTCBPrio $prio",
        "OSSemPend%return $prio",
        // The consumer's two OSQPend calls return the messages 2n and 2n + 1.
        "OSQPend%return $retval:u64",
        "OSMutexPost%return $retval:u8",
    ] {
        ok(
            sys.hv_trace(&["probe", "add", spec]).unwrap(),
            &format!("probe add {spec}"),
        );
    }
    let list = ok(sys.hv_trace(&["probe", "list"]).unwrap(), "probe list");
    assert!(
        list.contains("label=OSMboxPost OSEventName=+0(+") && list.contains("kind=return"),
        "the listing shows labels, arguments and return sites:\n{list}"
    );

    let out_path = hv_trace_e2e::repo_root().join("target/e2e/data_probes");
    let _ = std::fs::remove_dir_all(&out_path);
    std::fs::create_dir_all(&out_path).unwrap();
    ok(
        // The guest's own trace-cmd records here (the other tests stream):
        // its file in the guest is read by its report below.
        sys.hv_trace(&[
            "record",
            "--trace-cmd",
            "--duration",
            "4",
            "--out",
            out_path.to_str().unwrap(),
        ])
        .unwrap(),
        "record",
    );
    let all = hits(&out_path.join("guest.dat"));
    let of = |label: &str, comm: Option<&str>| -> Vec<&Hit> {
        all.iter()
            .filter(|h| h.label == label && comm.is_none_or(|c| h.comm == c))
            .collect()
    };

    // A string, a value behind a pointer argument and a global, in one hit.
    let mbox = of("OSMboxPost", None);
    assert!(mbox.len() >= 20, "OSMboxPost hits: {}", mbox.len());
    for h in &mbox {
        assert_eq!(h.text("OSEventName"), "SYNC-Mbox", "{h:?}");
        assert_eq!(
            h.num("msg"),
            h.num("produced") + 1,
            "message n is posted before Produced++: {h:?}"
        );
    }
    for w in mbox.windows(2) {
        assert_eq!(w[1].num("msg"), w[0].num("msg") + 1, "one message per round: {w:?}");
    }

    // A count behind a pointer, a global, and a NULL pointer that faults.
    let sem = of("OSSemPost", None);
    assert!(sem.len() >= 40, "OSSemPost hits: {}", sem.len());
    for h in &sem {
        assert_eq!(h.values["link"], ProbeValue::Fault, "{h:?}");
        // Every post in the app has a task waiting for it.
        assert_eq!(h.num("OSEventCnt"), 0, "{h:?}");
    }
    let pongs: Vec<u64> = of("OSSemPost", Some("SYNC-Ping"))
        .iter()
        .map(|h| h.num("pongs"))
        .collect();
    assert!(pongs.len() >= 20, "Ping's posts: {pongs:?}");
    assert!(
        pongs.windows(2).all(|w| w[1] == w[0] + 1),
        "Pong counts each post: {pongs:?}"
    );

    // Arguments equal the app's constants (OS_TICKS_PER_SEC = 1000).
    for (task, ticks) in [("SYNC-Producer", 100), ("SYNC-MutexLow", 60), ("SYNC-Report", 1000)] {
        let dly = of("OSTimeDly", Some(task));
        assert!(!dly.is_empty(), "{task} delays");
        assert!(dly.iter().all(|h| h.num("ticks") == ticks), "{task}: {dly:?}");
        assert!(
            dly.iter().all(|h| h.num("tcbprio") == h.num("prio")),
            "OSTCBCur->OSTCBPrio is the running task's: {dly:?}"
        );
    }

    // Return probes: durations fit between the task's returns, and Ping waits
    // out the producer's 100 ms period.
    let ping = of("OSSemPend%return", Some("SYNC-Ping"));
    assert!(ping.len() >= 20, "Ping's returns: {}", ping.len());
    let freq = 62_500_000u64;
    for w in ping.windows(2) {
        let gap_ns = (w[1].ts - w[0].ts) * 1_000_000_000 / freq;
        assert!(
            w[1].num("duration") <= gap_ns,
            "a call lasts less than the time since the last one returned: {w:?}"
        );
    }
    let mut d: Vec<u64> = ping.iter().map(|h| h.num("duration")).collect();
    d.sort_unstable();
    let median_ms = d[d.len() / 2] / 1_000_000;
    assert!((90..=110).contains(&median_ms), "Ping waits ~100 ms: {d:?}");
    let gt = ground_truth(
        &mut Monitor::connect(sys.path()).unwrap(),
        elf.lookup("OSGtLog")[0].addr,
    )
    .unwrap();
    let own = durations_against_the_ground_truth(&ping, &gt, freq);
    let us = |t: u64| t * 1_000_000 / freq;
    eprintln!(
        "{} OSSemPend calls of Ping against the ground truth: the call's own time (Ping running in it) median {} µs, max {} µs",
        ping.len(),
        us(own[own.len() / 2]),
        us(own[own.len() - 1])
    );
    let msgs: Vec<u64> = of("OSQPend%return", Some("SYNC-Consumer"))
        .iter()
        .map(|h| h.num("retval"))
        .collect();
    assert!(msgs.len() >= 40, "the consumer's OSQPend returns: {msgs:?}");
    let first = msgs.iter().position(|m| m % 2 == 0).unwrap();
    for pair in msgs[first..].chunks_exact(2) {
        assert_eq!(pair[1], pair[0] + 1, "messages 2n, 2n + 1: {msgs:?}");
    }
    assert!(
        msgs[first..]
            .chunks_exact(2)
            .collect::<Vec<_>>()
            .windows(2)
            .all(|w| w[1][0] == w[0][0] + 2),
        "one pair per round: {msgs:?}"
    );
    let mutex = of("OSMutexPost%return", None);
    assert!(mutex.len() >= 10, "OSMutexPost returns: {}", mutex.len());
    assert!(
        mutex
            .iter()
            .all(|h| h.num("retval") == 0 && h.values.contains_key("duration")),
        "OSMutexPost returns OS_ERR_NONE: {mutex:?}"
    );

    // trace-cmd's own report in the guest shows the values.
    let report = ok(
        sys.hv_trace(&[
            "exec",
            "trace-cmd report /tmp/guest.dat | grep -m 3 'OSMboxPost OSEventName='",
        ])
        .unwrap(),
        "trace-cmd report",
    );
    assert!(report.contains("OSEventName=\"SYNC-Mbox\" msg="), "{report}");

    // Linux: a file's name, read through a user pointer in Linux's stage 1.
    ok(
        sys.hv_trace(&["probe", "add", "--vm", "linux", "do_sys_openat2 dfd filename:string"])
            .unwrap(),
        "probe add --vm linux",
    );
    let opened = ok(
        sys.hv_trace(&[
            "exec",
            // Records from Linux's own core are drained on the module's
            // 100 ms tick: wait (at most 20 s) for cat's before stopping.
            // Other opens may come first (`probe add` itself lists the
            // probes with `cat` while the probe is in): look for this one.
            "echo 1 > /sys/kernel/tracing/events/hvtrace/rtos_probe/enable; echo 1 > /sys/kernel/hvtrace/enable; \
             cat /proc/version > /dev/null; \
             for i in $(seq 200); do grep -q '/proc/version' /sys/kernel/tracing/trace && break; sleep 0.1; done; \
             echo 0 > /sys/kernel/hvtrace/enable; grep -m 1 '/proc/version' /sys/kernel/tracing/trace",
        ])
        .unwrap(),
        "opening a file in Linux",
    );
    assert!(
        opened.contains("do_sys_openat2 dfd=-100 filename=\"/proc/version\" rtos_cpu=0")
            && opened.contains("comm=cat "),
        "{opened}"
    );
    ok(
        sys.hv_trace(&["probe", "remove", "--vm", "linux", "do_sys_openat2"])
            .unwrap(),
        "probe remove --vm linux",
    );

    // Both VMs run on after all those faults.
    let before = sys.run_log().matches("sync: produced").count();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        sys.run_log().matches("sync: produced").count() > before,
        "the RTOS runs on"
    );
    ok(sys.hv_trace(&["exec", "true"]).unwrap(), "Linux answers");
    for target in [
        "OSMboxPost",
        "OSSemPost",
        "OSTimeDly",
        "OSSemPend%return",
        "OSQPend%return",
        "OSMutexPost%return",
    ] {
        ok(
            sys.hv_trace(&["probe", "remove", target]).unwrap(),
            &format!("probe remove {target}"),
        );
    }
    let list = ok(sys.hv_trace(&["probe", "list"]).unwrap(), "probe list");
    assert!(!list.contains("vm=1"), "every probe went:\n{list}");
}
