//! The live merge (a capture read while it fills, merged batch by batch)
//! gives what the merge of the finished file gives, whatever order the
//! CPUs' pages arrive in: the same events on every CPU, the same plan, and
//! a byte-identical merged .dat.

use std::collections::BTreeMap;
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use trace_convert::live::LiveMerge;
use trace_convert::write::dat::{DatHeader, DatWriter};
use trace_convert::{merge, pipeline, Event, Trace, TraceMeta};

const PAGE: usize = 4096;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/capture-4core")
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// An event as a line that says everything a .dat keeps of it.
fn line(ev: &Event) -> String {
    format!(
        "{} {} {} {}:{} {:?} {:?}",
        ev.ts_ns,
        ev.cpu,
        ev.pid,
        ev.system(),
        ev.name(),
        ev.fields,
        ev.missed_before
    )
}

type PerCpu = BTreeMap<u32, Vec<String>>;

fn write_dat(meta: &TraceMeta, events: &[Event]) -> Vec<u8> {
    let mut w = DatWriter::new(Cursor::new(Vec::new()), DatHeader::from_meta(meta), &meta.formats).unwrap();
    for ev in events {
        w.write(ev).unwrap();
    }
    w.finish_into().unwrap().into_inner()
}

/// The offline merge of the finished capture.
fn offline(dir: &Path, work: &Path) -> (PerCpu, merge::MergePlan, Vec<u8>) {
    let dat = work.join("guest.dat");
    trace_convert::capture::assemble(dir, &dat).unwrap();
    let traces = vec![Trace::open(&dat).unwrap()];
    let plan = merge::plan(&traces).unwrap();
    let (meta, events) = pipeline::prepare(&traces, true).unwrap();
    let events: Vec<Event> = events.map(|e| e.unwrap()).collect();
    let mut per: PerCpu = BTreeMap::new();
    for ev in &events {
        per.entry(ev.cpu).or_default().push(line(ev));
    }
    (per, plan, write_dat(&meta, &events))
}

/// When the agent could have read each page of `pages` at the earliest:
/// the time of its last event (it reads what a CPU wrote so far, every
/// 100 ms: a page on disk is one read).
fn page_ends(pages: &[u8]) -> Vec<u64> {
    let hdr = trace_convert::format::PageHeader {
        commit_size: 8,
        data_offset: 16,
    };
    pages
        .chunks(PAGE)
        .map(|p| {
            let mut r =
                trace_convert::ringbuf::PageRecords::new(p, &hdr, trace_convert::bytes::Endian::Little, 0).unwrap();
            for rec in r.by_ref() {
                rec.unwrap();
            }
            r.ts()
        })
        .collect()
}

/// The capture arriving as the agent sends it: every pass (50..150 ms of
/// trace time apart, from `seed`), each CPU in `order` sends the pages it
/// has read by then; some CPUs are up to 300 ms late (a busy CPU, a slow
/// read); the live merge polls after each pass. Nothing is later than the
/// merge's `SETTLE_NS` (0.5 s), so nothing may come out differently.
fn live(dir: &Path, work: &Path, order: &[usize], seed: u64) -> (PerCpu, merge::MergePlan, Vec<u8>, u64) {
    let cap = work.join(format!("capture-{seed}"));
    let _ = fs::remove_dir_all(&cap);
    copy_tree(&dir.join("meta"), &cap.join("meta"));
    let pages: Vec<Vec<u8>> = (0..3)
        .map(|c| fs::read(dir.join(format!("cpu{c}.pages"))).unwrap())
        .collect();
    let ends: Vec<Vec<u64>> = pages.iter().map(|p| page_ends(p)).collect();
    let stamp = |c: usize, i: usize| -> u64 { ends[c].get(i).copied().unwrap_or(u64::MAX) };
    let mut at = [0usize; 3];
    let mut rng = seed;
    let mut next = |m: u64| {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 33) % m
    };
    let mut now = (0..3).map(|c| stamp(c, 0)).min().unwrap();
    let mut lm = LiveMerge::new(&cap);
    let mut events = Vec::new();
    let mut sink = |_: &TraceMeta, ev: Event| events.push(ev);
    let mut polls = 0;
    while (0..3).any(|c| at[c] * PAGE < pages[c].len()) {
        now += 50_000_000 + next(100) * 1_000_000;
        let last_pass = (0..3).all(|c| stamp(c, at[c]) == u64::MAX || stamp(c, at[c]) > now + 10_000_000_000);
        for &c in order {
            let seen = now.saturating_sub(next(4) * 100_000_000);
            let mut n = 0;
            while at[c] * PAGE < pages[c].len() && (last_pass || stamp(c, at[c]) <= seen) {
                at[c] += 1;
                n += 1;
            }
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(cap.join(format!("cpu{c}.pages")))
                .unwrap();
            std::io::Write::write_all(&mut f, &pages[c][(at[c] - n) * PAGE..at[c] * PAGE]).unwrap();
        }
        lm.poll(&mut sink).unwrap();
        polls += 1;
    }
    lm.finish(&mut sink).unwrap();
    assert!(
        polls > 10,
        "the capture came in {polls} batches: too few to mean anything"
    );
    let rtos = lm.rtos().unwrap();
    assert_eq!((rtos.late(), rtos.forced()), (0, 0), "seed {seed}");
    // The header as the finished file says it (task names, symbols).
    let done = Trace::open(work.join("guest.dat")).unwrap();
    let meta = merge::merged_meta_from(done.meta().clone(), &lm.plan());
    let mut per: PerCpu = BTreeMap::new();
    for ev in &events {
        per.entry(ev.cpu).or_default().push(line(ev));
    }
    (per, lm.plan(), write_dat(&meta, &events), polls)
}

#[test]
fn live_merge_equals_the_offline_merge_in_any_arrival_order() {
    let dir = fixture();
    let work = std::env::temp_dir().join(format!("tc-live-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let (want, plan, want_dat) = offline(&dir, &work);
    assert!(plan.rtos_events > 300 && plan.sync_points > 40, "{plan:?}");
    let rtos_cpu = *plan.rtos_cpus.iter().next().unwrap();
    assert!(
        want[&rtos_cpu].len() as u64 >= plan.rtos_events,
        "RTOS events and their switches on CPU {rtos_cpu}"
    );
    for (order, seed) in [(vec![0, 1, 2], 1), (vec![2, 1, 0], 2), (vec![1, 0, 2], 3)] {
        let (got, got_plan, got_dat, polls) = live(&dir, &work, &order, seed);
        for cpu in want.keys().chain(got.keys()) {
            let (w, g) = (&want[cpu], &got[cpu]);
            if let Some(i) = (0..w.len().max(g.len())).find(|&i| w.get(i) != g.get(i)) {
                panic!(
                    "arrival order {order:?} (seed {seed}, {polls} batches): CPU {cpu} differs at event {i}:\n offline {:?}\n live    {:?}",
                    w.get(i),
                    g.get(i)
                );
            }
        }
        assert_eq!(format!("{got_plan:?}"), format!("{plan:?}"));
        assert!(got_dat == want_dat, "the merged .dat files differ (order {order:?})");
    }
    let _ = fs::remove_dir_all(&work);
}
