//! The uC/OS-II-compatible RTOS guest (`guests/ucos-ii`) on its own:
//! host unit tests of its kernel, the image's symbols and DWARF, and a bare
//! QEMU run whose ground-truth context-switch log (read with the QEMU
//! monitor's `pmemsave`) must show the paper's workload (run lengths
//! doubling from RTOS-Task1 to RTOS-Task4) and an exact tick rate.

use anyhow::{bail, ensure, Context, Result};
use hv_trace_e2e::{repo_root, run_bounded};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// VA = PA + this (the RTOS runs in the upper half via TTBR1).
const KVA_OFFSET: u64 = 0xFFFF_0000_0000_0000;
const LOAD_PA: u64 = 0x4010_0000;
const GT_MAGIC: u32 = 0x4754_4C47;
const GT_HEADER: usize = 32;
const TASK1_PRIO: u8 = 10;

/// Builds and emulator runs take turns: run side by side on a small machine
/// they would stretch whatever the guest happens to be running and spoil
/// the timing measurements.
fn heavy_work_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn make_rtos(build: &Path, vars: &[&str]) -> Result<()> {
    let _turn = heavy_work_turn();
    let out = run_bounded(
        Command::new("make")
            .arg("-j2")
            .arg("-C")
            .arg(repo_root().join("guests/ucos-ii"))
            .arg(format!("BUILD={}", build.display()))
            .args(vars),
        Duration::from_secs(900),
    )?;
    ensure!(
        out.status.success(),
        "make {vars:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The GROUND_TRUTH=1 paper image, built once per test process.
fn gt_image() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ucos-ii-gt");
        make_rtos(&dir, &["GROUND_TRUTH=1"]).unwrap();
        dir.join("ucos-ii.elf")
    })
}

fn symbols(elf: &Path) -> Result<BTreeMap<String, u64>> {
    let out = Command::new("aarch64-linux-gnu-nm")
        .arg(elf)
        .output()
        .context("running nm")?;
    ensure!(out.status.success(), "nm failed");
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let addr = u64::from_str_radix(f.next()?, 16).ok()?;
            let _kind = f.next()?;
            Some((f.next()?.to_string(), addr))
        })
        .collect())
}

#[test]
fn kernel_unit_tests_pass_on_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let _turn = heavy_work_turn();
    let out = run_bounded(
        Command::new("make")
            .arg("-C")
            .arg(repo_root().join("guests/ucos-ii"))
            .arg(format!("BUILD={}", dir.path().display()))
            .arg("host-test"),
        Duration::from_secs(600),
    )
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "host unit tests failed");
    assert!(stdout.contains(" tests, 0 failed"), "{stdout}");
    for name in [
        "ready_list",
        "delays",
        "semaphore",
        "mutex_priority_ceiling",
        "mailbox",
        "queue",
        "event_flags",
    ] {
        assert!(
            stdout.contains(&format!("test {name} ... ok")),
            "{name} did not pass:\n{stdout}"
        );
    }
}

#[test]
fn image_keeps_the_memory_layout_contract() {
    let elf = gt_image();
    let syms = symbols(elf).unwrap();
    assert_eq!(syms["_start"], KVA_OFFSET + LOAD_PA, "_start is the image's first byte");
    for name in [
        "OSCtxSw",
        "OSIntCtxSw",
        "OSTaskSwHook",
        "OSStartHighRdy",
        "OSTCBCur",
        "OSTCBHighRdy",
        "OSGtLog",
    ] {
        assert!(syms.contains_key(name), "symbol {name} missing");
    }
    let end = syms["__image_end"] - KVA_OFFSET;
    assert!(
        end <= 0x4100_0000,
        "image ends at PA {end:#x}, outside the RTOS's 16 MiB"
    );
    let bytes = std::fs::read(elf).unwrap();
    let entry = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
    assert_eq!(entry, LOAD_PA, "ELF entry is the physical load address");
    let bin = std::fs::read(elf.with_extension("bin")).unwrap();
    // The .bin starts with _start's code: `mrs x0, CurrentEL`.
    assert_eq!(&bin[..4], &0xd538_4240u32.to_le_bytes());
}

#[test]
fn dwarf_describes_os_tcb_and_its_members() {
    let out = Command::new("aarch64-linux-gnu-readelf")
        .arg("--debug-dump=info")
        .arg(gt_image())
        .output()
        .unwrap();
    assert!(out.status.success());
    let info = String::from_utf8_lossy(&out.stdout);
    let name_of = |l: &str| l.rsplit(": ").next().map(str::trim).unwrap_or("").to_string();
    assert!(
        info.lines().any(|l| l.contains("DW_AT_name") && name_of(l) == "OS_TCB"),
        "no OS_TCB typedef in the DWARF"
    );
    // Members of the first `struct os_tcb`, in declaration order.
    let mut members = Vec::new();
    let (mut in_tcb, mut tag) = (false, String::new());
    for l in info.lines() {
        if l.contains("Abbrev Number") {
            let depth = l.trim_start().split('>').next().unwrap_or("");
            if in_tcb && depth == "<1" {
                break;
            }
            tag = l.to_string();
        } else if l.contains("DW_AT_name") {
            let name = name_of(l);
            if tag.contains("DW_TAG_structure_type") && name == "os_tcb" && members.is_empty() {
                in_tcb = true;
            } else if in_tcb && tag.contains("DW_TAG_member") {
                members.push(name);
            }
        }
    }
    let expected = [
        "OSTCBStkPtr",
        "OSTCBExtPtr",
        "OSTCBStkBottom",
        "OSTCBStkSize",
        "OSTCBOpt",
        "OSTCBId",
        "OSTCBNext",
        "OSTCBPrev",
        "OSTCBEventPtr",
        "OSTCBMsg",
        "OSTCBFlagNode",
        "OSTCBFlagsRdy",
        "OSTCBDly",
        "OSTCBStat",
        "OSTCBStatPend",
        "OSTCBPrio",
        "OSTCBX",
        "OSTCBY",
        "OSTCBBitX",
        "OSTCBBitY",
        "OSTCBDelReq",
        "OSTCBCtxSwCtr",
        "OSTCBCyclesTot",
        "OSTCBCyclesStart",
        "OSTCBStkBase",
        "OSTCBStkUsed",
        "OSTCBTaskName",
        "OSTCBRegTbl",
    ];
    assert_eq!(members, expected, "OS_TCB members in DWARF");
}

/// A QEMU started by a test; killed (by its PID) when dropped.
struct Qemu {
    child: Child,
    monitor: UnixStream,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Qemu {
    fn boot(elf: &Path, dir: &Path) -> Result<Qemu> {
        let sock = dir.join("monitor.sock");
        let console = std::fs::File::create(dir.join("console.txt"))?;
        let child = Command::new("qemu-system-aarch64")
            .args([
                "-M",
                "virt,gic-version=3",
                "-cpu",
                "cortex-a72",
                "-smp",
                "1",
                "-m",
                "512M",
            ])
            .args(["-nographic", "-nic", "none", "-kernel"])
            .arg(elf)
            .arg("-monitor")
            .arg(format!("unix:{},server,nowait", sock.display()))
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(Stdio::piped())
            .spawn()
            .context("starting qemu-system-aarch64")?;
        let mut qemu = Qemu {
            child,
            monitor: UnixStream::pair()?.0,
        };
        let started = Instant::now();
        qemu.monitor = loop {
            match UnixStream::connect(&sock) {
                Ok(s) => break s,
                Err(e) if started.elapsed() > Duration::from_secs(60) => {
                    bail!("QEMU's monitor socket never appeared: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        qemu.monitor.set_read_timeout(Some(Duration::from_secs(60)))?;
        qemu.read_prompt()?;
        Ok(qemu)
    }

    fn read_prompt(&mut self) -> Result<String> {
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while !text.ends_with(b"(qemu) ") {
            let n = self.monitor.read(&mut buf).context("reading QEMU's monitor")?;
            ensure!(n > 0, "QEMU's monitor closed");
            text.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    fn hmp(&mut self, cmd: &str) -> Result<String> {
        self.monitor.write_all(format!("{cmd}\n").as_bytes())?;
        self.read_prompt()
    }

    /// Guest-physical memory, through `pmemsave` into a file.
    fn read_phys(&mut self, pa: u64, len: usize, dir: &Path) -> Result<Vec<u8>> {
        let file = dir.join(format!("pmem-{pa:x}-{len}.bin"));
        // Quoted: an unquoted path would be read as a division.
        let reply = self.hmp(&format!("pmemsave {pa:#x} {len} \"{}\"", file.display()))?;
        ensure!(!reply.contains("Try \"help"), "pmemsave refused: {reply}");
        let bytes = std::fs::read(&file).with_context(|| format!("pmemsave {pa:#x} {len}"))?;
        ensure!(
            bytes.len() == len,
            "pmemsave returned {} bytes, wanted {len}",
            bytes.len()
        );
        Ok(bytes)
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// One context switch from the ground-truth log.
#[derive(Clone, Copy, Debug)]
struct Switch {
    cntvct: u64,
    prev: u8,
    next: u8,
    /// 0 OSCtxSw (the outgoing task blocked), 1 OSIntCtxSw (it was preempted), 2 start.
    kind: u8,
    ostime: u32,
}

struct GtLog {
    cntfrq: u64,
    ticks_per_sec: u32,
    switches: Vec<Switch>,
}

fn parse_gt_log(b: &[u8]) -> Result<GtLog> {
    ensure!(u32_at(b, 0) == GT_MAGIC, "OSGtLog magic is {:#x}", u32_at(b, 0));
    let (entry_size, capacity, count) = (u32_at(b, 4) as usize, u32_at(b, 8) as usize, u32_at(b, 12) as usize);
    ensure!(entry_size == 16, "entry size {entry_size}");
    let n = count.min(capacity);
    ensure!(b.len() >= GT_HEADER + n * entry_size, "log truncated");
    let switches = (0..n)
        .map(|i| {
            let e = &b[GT_HEADER + i * entry_size..];
            Switch {
                cntvct: u64_at(e, 0),
                prev: e[8],
                next: e[9],
                kind: e[10],
                ostime: u32_at(e, 12),
            }
        })
        .collect();
    Ok(GtLog {
        cntfrq: u64_at(b, 16),
        ticks_per_sec: u32_at(b, 24),
        switches,
    })
}

/// Per priority: lengths (counter ticks) of its jobs, a job being all it ran
/// from being switched in until it blocked (switched out by OSCtxSw);
/// preemptions (OSIntCtxSw) split runs but not jobs.
fn job_lengths(sw: &[Switch], from_ostime: u32) -> Result<BTreeMap<u8, Vec<u64>>> {
    let mut jobs: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
    let mut open: BTreeMap<u8, u64> = BTreeMap::new();
    for w in sw.windows(2) {
        let (a, b) = (w[0], w[1]);
        ensure!(b.prev == a.next, "log inconsistent: {a:?} then {b:?}");
        ensure!(b.cntvct >= a.cntvct, "counter went backwards: {a:?} then {b:?}");
        if a.ostime < from_ostime {
            continue;
        }
        *open.entry(a.next).or_default() += b.cntvct - a.cntvct;
        if b.kind == 0 {
            let len = open.remove(&a.next).unwrap_or(0);
            jobs.entry(a.next).or_default().push(len);
        }
    }
    Ok(jobs)
}

fn mean(v: &[u64]) -> f64 {
    v.iter().sum::<u64>() as f64 / v.len() as f64
}

/// The median: the emulator's thread is now and then descheduled by the
/// host, which stretches whatever job runs at that moment; the median is
/// immune to those outliers, the mean is not.
fn median(v: &[u64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    s[s.len() / 2] as f64
}

/// Boots a GROUND_TRUTH=1 image bare, lets it run until its OSTime reaches
/// `ticks`, stops it and returns its console and its OSGtLog.
fn run_bare(elf: &Path, ticks: u32) -> (String, GtLog) {
    let syms = symbols(elf).unwrap();
    let pa = |name: &str| syms[name] - KVA_OFFSET;
    let _turn = heavy_work_turn();
    let dir = tempfile::tempdir().unwrap();
    let mut qemu = Qemu::boot(elf, dir.path()).unwrap();
    let started = Instant::now();
    loop {
        let t = u32_at(&qemu.read_phys(pa("OSTime"), 4, dir.path()).unwrap(), 0);
        if t >= ticks {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "guest reached only OSTime={t}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    qemu.hmp("stop").unwrap();
    let header = qemu.read_phys(pa("OSGtLog"), GT_HEADER, dir.path()).unwrap();
    let capacity = u32_at(&header, 8) as usize;
    let raw = qemu
        .read_phys(pa("OSGtLog"), GT_HEADER + 16 * capacity, dir.path())
        .unwrap();
    drop(qemu);
    let console = std::fs::read_to_string(dir.path().join("console.txt")).unwrap_or_default();
    println!("console:\n{console}");
    (console, parse_gt_log(&raw).unwrap())
}

#[test]
fn bare_qemu_run_shows_doubling_run_lengths_and_exact_tick_rate() {
    // >= 4 s of the guest's own time (1000 ticks/s) after 0.5 s of start-up.
    let (console, log) = run_bare(gt_image(), 4500);
    let sw = &log.switches;
    assert!(sw.len() > 100, "only {} switches logged", sw.len());
    assert_eq!(sw[0].kind, 2, "the log starts with OSStartHighRdy");

    // Tick rate: OSTime against the counter, from 0.5 s on.
    let first = sw.iter().find(|s| s.ostime >= 500).unwrap();
    let last = sw.last().unwrap();
    let secs = (last.cntvct - first.cntvct) as f64 / log.cntfrq as f64;
    assert!(secs >= 3.0, "analysed span is only {secs:.2} s");
    let rate = (last.ostime - first.ostime) as f64 / secs;
    let want = f64::from(log.ticks_per_sec);
    println!("tick rate {rate:.2}/s over {secs:.2} s (OS_TICKS_PER_SEC {want})");
    assert!(
        (rate - want).abs() / want < 0.02,
        "tick rate {rate:.2}/s, want {want} ± 2%"
    );

    // Run lengths of RTOS-Task1..4 (priorities 10..13).
    let jobs = job_lengths(sw, 500).unwrap();
    let us = |t: f64| t * 1e6 / log.cntfrq as f64;
    let mut means = Vec::new();
    for i in 0..4u8 {
        let j = jobs.get(&(TASK1_PRIO + i)).map(Vec::as_slice).unwrap_or(&[]);
        assert!(j.len() >= 40, "RTOS-Task{} ran only {} jobs", i + 1, j.len());
        println!(
            "RTOS-Task{}: {} jobs, mean {:.0} us, median {:.0} us",
            i + 1,
            j.len(),
            us(mean(j)),
            us(median(j))
        );
        means.push(median(j));
    }
    for i in 1..4 {
        let ratio = means[i] / means[i - 1];
        let mean_ratio = mean(&jobs[&(TASK1_PRIO + i as u8)]) / mean(&jobs[&(TASK1_PRIO + i as u8 - 1)]);
        println!(
            "RTOS-Task{}/RTOS-Task{}: {ratio:.3} (medians), {mean_ratio:.3} (means)",
            i + 1,
            i
        );
        assert!(
            (ratio - 2.0).abs() <= 0.3,
            "Task{}/Task{} run-length ratio {ratio:.3}",
            i + 1,
            i
        );
    }
    assert!(
        console.contains("RTOS-Task4 prio 13"),
        "no task report on the console:\n{console}"
    );
}

#[test]
fn sync_app_exercises_semaphores_mailbox_queue_mutex_and_flags() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ucos-ii-sync-gt");
    make_rtos(&dir, &["APP=sync", "GROUND_TRUTH=1"]).unwrap();
    let (console, log) = run_bare(&dir.join("ucos-ii.elf"), 3500);
    // Last report: "... produced P consumed C pongs N flag rounds F | mutex high H low L
    // (low raised to ceiling R times) ..."
    let line = console
        .lines()
        .rev()
        .find(|l| l.contains("sync: produced"))
        .expect("a report line");
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let [_ms, produced, consumed, pongs, flags, high, low, raised, ..] = nums[..] else {
        panic!("unexpected report line: {line}")
    };
    assert!(produced >= 20, "{line}");
    assert!(
        consumed + 1 >= produced && pongs + 1 >= produced && flags + 1 >= produced,
        "{line}"
    );
    assert!(high >= 10 && low >= 20, "{line}");
    assert!(raised >= 1, "the mutex owner was never raised to the ceiling: {line}");
    assert!(!console.contains("failed"), "{console}");
    // The ground truth shows the ceiling priority (5) running: the raised owner.
    let sw = &log.switches;
    assert!(job_lengths(sw, 0).is_ok(), "inconsistent switch log");
    assert!(sw.iter().any(|s| s.next == 5), "no switch to the ceiling priority 5");
}
