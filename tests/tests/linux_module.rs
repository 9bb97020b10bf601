//! The hvtrace Rust-for-Linux module: its ABI view against the generated
//! header and its sysfs parsers on the host; then, in the real system (QEMU,
//! hypervisor, Linux, RTOS via `hv-trace run`), the guest script
//! `/etc/hvtrace/module-test` loads it, drives it through sysfs and the real
//! trace-cmd, and prints `hvtrace-test:` lines that the tests below check.

use hv_trace_e2e::{build_artifacts, hv_trace, repo_root};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

#[allow(dead_code)]
#[path = "../../linux-module/abi.rs"]
mod abi;
/// The control protocol as the module compiles it: guest-probe's
/// definition against the module's own view of the ABI.
#[allow(dead_code)]
#[path = "../../guest-probe/src/abi/control.rs"]
mod cmd;
/// Fetch arguments, as the module compiles them.
#[allow(dead_code)]
#[path = "../../guest-probe/src/abi/fetch.rs"]
mod fetch;

/// The generated `hvtrace_abi.h` the module was built with (the build puts
/// it next to the module sources in its cache directory).
fn generated_header() -> String {
    let built = built_linux();
    let ko = PathBuf::from(
        built["hvtrace-module"]
            .as_str()
            .expect("hv-trace build linux names the module"),
    );
    let path = ko.parent().unwrap().join("src/hvtrace_abi.h");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `hv-trace build linux`, once per test process: concurrent builds of the
/// same artifacts race in the CLI's cache, so every test here goes through
/// this one.
fn built_linux() -> &'static serde_json::Map<String, serde_json::Value> {
    static BUILT: OnceLock<serde_json::Map<String, serde_json::Value>> = OnceLock::new();
    BUILT.get_or_init(|| build_artifacts("linux", &[]).unwrap())
}

/// Named values of the header: `#define`s, `offsetof` and `sizeof` asserts.
fn header_values(h: &str) -> HashMap<String, u64> {
    let num = |s: &str| -> Option<u64> {
        let s = s.trim().trim_start_matches('(').trim_end_matches(')');
        if let Some(hex) = s.strip_prefix("0x") {
            u64::from_str_radix(hex, 16).ok()
        } else {
            s.parse::<i64>().ok().map(|v| v as u64)
        }
    };
    let mut m = HashMap::new();
    for line in h.lines() {
        if let Some(rest) = line.strip_prefix("#define ") {
            let mut it = rest.split_whitespace();
            if let (Some(name), Some(v)) = (it.next(), it.next()) {
                if let Some(v) = num(v) {
                    m.insert(name.to_string(), v);
                }
            }
        } else if let Some(rest) = line.strip_prefix("_Static_assert(offsetof(struct ") {
            // hvtrace_record, seq) == 28, "..."
            let (ty, rest) = rest.split_once(", ").unwrap();
            let (field, rest) = rest.split_once(") == ").unwrap();
            let (v, _) = rest.split_once(',').unwrap();
            m.insert(format!("{ty}.{field}"), num(v).unwrap());
        } else if let Some(rest) = line.strip_prefix("_Static_assert(sizeof(struct ") {
            let (ty, rest) = rest.split_once(") == ").unwrap();
            let (v, _) = rest.split_once(',').unwrap();
            m.insert(format!("sizeof({ty})"), num(v).unwrap());
        }
    }
    m
}

/// The module's own view of the ABI agrees with the header generated from
/// guest-probe's single definition (the module checks the same table
/// against its C compiler's view when it loads).
#[test]
fn module_abi_view_matches_the_generated_header() {
    let values = header_values(&generated_header());
    assert!(values.len() > 40, "parsed too little of the header: {values:?}");
    assert_eq!(abi::check(|name| values.get(name).copied()), Ok(abi::LAYOUT.len()));
    // And the check does notice a difference.
    let mut wrong = values.clone();
    wrong.insert("hvtrace_record.seq".into(), 24);
    assert_eq!(
        abi::check(|name| wrong.get(name).copied()),
        Err(abi::Mismatch::Differs {
            name: "hvtrace_record.seq",
            ours: 28,
            theirs: 24
        })
    );
    wrong.remove("HVTRACE_HVC_TEST_EMIT");
    wrong.insert("hvtrace_record.seq".into(), 28);
    assert_eq!(
        abi::check(|name| wrong.get(name).copied()),
        Err(abi::Mismatch::Missing("HVTRACE_HVC_TEST_EMIT"))
    );
}

#[test]
fn comm_is_terminated_and_printable() {
    let mut name = [b'x'; 16];
    assert_eq!(&abi::comm(&name)[..], b"xxxxxxxxxxxxxxx\0");
    name[3] = 0x07;
    name[5] = 0;
    assert_eq!(&abi::comm(&name)[..6], b"xxx?x\0");
    assert_eq!(&abi::comm(b"RTOS-Task1\0\0\0\0\0\0")[..], b"RTOS-Task1\0\0\0\0\0\0");
    assert_eq!(
        &abi::comm(b"\x7f\x80\xff\x1f \x7e\0zzzzzzzzz")[..],
        b"??\x3f? ~\0\0\0\0\0\0\0\0\0\0"
    );
}

/// `comm` works eight bytes at a time; this is what it must equal.
fn comm_bytewise(name: &[u8; 16]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, &c) in out.iter_mut().zip(name.iter()).take(15) {
        if c == 0 {
            break;
        }
        *o = if (0x20..0x7f).contains(&c) { c } else { b'?' };
    }
    out
}

#[test]
fn comm_agrees_with_the_byte_by_byte_rule() {
    // Every byte value at every position, the NUL at every position after
    // it, and random names biased towards the edges of the printable range.
    for pos in 0..16 {
        for v in 0..=255u8 {
            for nul in pos + 1..=16 {
                let mut name = [b'a'; 16];
                name[pos] = v;
                if nul < 16 {
                    name[nul] = 0;
                }
                assert_eq!(abi::comm(&name), comm_bytewise(&name), "{name:?}");
            }
        }
    }
    let edges = [0u8, 1, 0x1f, 0x20, 0x21, 0x3f, 0x7e, 0x7f, 0x80, 0x9f, 0xa0, 0xff];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200_000 {
        let mut name = [0u8; 16];
        for b in &mut name {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = if x & 3 == 0 {
                edges[(x >> 8) as usize % edges.len()]
            } else {
                (x >> 16) as u8
            };
        }
        assert_eq!(abi::comm(&name), comm_bytewise(&name), "{name:?}");
    }
}

#[test]
fn records_are_rebuilt_from_their_words() {
    let mut bytes = [0u8; 64];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = i as u8 * 3 + 1;
    }
    let words: [u64; 8] = core::array::from_fn(|i| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap()));
    let r = abi::Record::from_words(words);
    // SAFETY: Record is repr(C), 64 bytes, integers and byte arrays
    // only (no padding, every bit pattern valid): its bytes are the layout.
    let expected: abi::Record = unsafe { core::mem::transmute(bytes) };
    assert_eq!(r, expected);
    assert_eq!(r.seq.to_le_bytes(), bytes[28..32]);
    assert_eq!(r.next_name, bytes[48..64]);
}

#[test]
fn sysfs_parsers_accept_commands_and_refuse_garbage() {
    use cmd::{parse_count, parse_enable, parse_probe, AddKind, ParseError as E, ProbeCmd};
    use fetch::FetchPlan;
    assert_eq!(parse_enable(b"1\n"), Ok(true));
    assert_eq!(parse_enable(b"0"), Ok(false));
    assert!(matches!(parse_enable(b"2\n"), Err(E::OutOfRange { .. })));
    assert!(matches!(parse_enable(b"on"), Err(E::NotANumber { .. })));
    assert_eq!(parse_enable(b"  \n"), Err(E::Empty));
    assert_eq!(parse_enable(b"\xff"), Err(E::NotText));
    assert_eq!(parse_count(b"1000\n"), Ok(1000));
    assert!(matches!(parse_count(b"0"), Err(E::OutOfRange { .. })));
    assert!(matches!(parse_count(b"-5"), Err(E::NotANumber { .. })));
    assert!(matches!(parse_count(b"+5"), Err(E::NotANumber { .. })));
    assert!(matches!(
        parse_count(b"99999999999999999999999"),
        Err(E::OutOfRange { .. })
    ));
    assert_eq!(
        parse_probe(b"add 1 0x40001000 switch\n"),
        Ok(ProbeCmd::Add {
            vm: 1,
            addr: 0x4000_1000,
            kind: AddKind::Switch,
            plan: FetchPlan::EMPTY,
        })
    );
    assert_eq!(
        parse_probe(b"add 1 ffff000040001000"),
        Ok(ProbeCmd::Add {
            vm: 1,
            addr: 0xffff_0000_4000_1000,
            kind: AddKind::Plain,
            plan: FetchPlan::EMPTY,
        })
    );
    // A label and fetch arguments in kprobe syntax, each checked.
    let Ok(ProbeCmd::Add { plan, .. }) = parse_probe(b"add 1 ffff000040001000 label=OSSemPost cnt=+8(%x0):u16 $comm")
    else {
        panic!("a probe with arguments was refused");
    };
    assert_eq!(plan.label(), b"OSSemPost");
    let args: Vec<String> = plan.args().iter().map(|a| a.to_string()).collect();
    assert_eq!(args, ["cnt=+8(%x0):u16", "comm=$comm:string"]);
    assert!(matches!(parse_probe(b"add 1 0x1000 x=+8(%x0):u12"), Err(E::Fetch(_))));
    assert!(matches!(
        parse_probe(b"add 1 0x1000 label=a_label_longer_than_16"),
        Err(E::BadLabel(_))
    ));
    assert!(matches!(parse_probe(b"add 1 0x1000 x=%x0 x=%x1"), Err(E::Fetch(_))));
    assert!(matches!(
        parse_probe(b"add 1 0x1000 return=3 label=OSSemPend%return r=$retval"),
        Ok(ProbeCmd::Add {
            kind: AddKind::Return { entry: 3 },
            ..
        })
    ));
    assert!(matches!(
        parse_probe(b"add 1 0x1000 entry"),
        Ok(ProbeCmd::Add {
            kind: AddKind::Entry,
            ..
        })
    ));
    assert!(matches!(
        parse_probe(b"add 1 0x1000 return=0"),
        Err(E::OutOfRange { .. })
    ));
    assert_eq!(parse_probe(b"remove 1 7"), Ok(ProbeCmd::Remove { vm: 1, id: 7 }));
    assert_eq!(parse_probe(b"add 1 0x40001002"), Err(E::Misaligned(0x4000_1002)));
    assert_eq!(parse_probe(b"add 1"), Err(E::Missing("address")));
    assert!(matches!(parse_probe(b"add 1 0x1000 sideways"), Err(E::Fetch(_))));
    assert_eq!(parse_probe(b"remove 1 7 8"), Err(E::Trailing("8")));
    assert_eq!(parse_probe(b"frob"), Err(E::UnknownCommand("frob")));
    assert!(matches!(parse_probe(b"remove 1 32768"), Err(E::OutOfRange { .. })));
    assert!(matches!(parse_probe(b"add 256 0x1000"), Err(E::OutOfRange { .. })));
    assert!(matches!(parse_probe(b"add 1 0"), Err(E::OutOfRange { .. })));
    assert!(matches!(parse_probe(b"add 1 0x"), Err(E::NotANumber { .. })));
    // Setting a variable: aligned, a size of a load, a value that fits it.
    let write = ProbeCmd::Write {
        vm: 1,
        addr: 0xffff_0000_4012_3458,
        size: 4,
        value: 0x2a,
    };
    assert_eq!(parse_probe(b"write 1 ffff000040123458 4 2a\n"), Ok(write));
    assert_eq!(parse_probe(write.to_string().as_bytes()), Ok(write));
    assert_eq!(
        parse_probe(b"write 1 0x1002 4 1"),
        Err(E::Unaligned { addr: 0x1002, size: 4 })
    );
    assert_eq!(parse_probe(b"write 1 0x1000 3 1"), Err(E::BadSize("3")));
    assert!(matches!(
        parse_probe(b"write 1 0x1000 1 100"),
        Err(E::OutOfRange { .. })
    ));
    assert!(matches!(
        parse_probe(b"write 1 0x1000 8 ffffffffffffffff"),
        Ok(ProbeCmd::Write { value: u64::MAX, .. })
    ));
    assert_eq!(parse_probe(b"write 1 0x1000 2"), Err(E::Missing("value")));
    let timing = ProbeCmd::IrqTiming { vm: 1, on: true };
    assert_eq!(parse_probe(b"irq_timing 1 1\n"), Ok(timing));
    assert_eq!(parse_probe(timing.to_string().as_bytes()), Ok(timing));
    assert!(matches!(parse_probe(b"irq_timing 1 2"), Err(E::OutOfRange { .. })));
    // Messages say why.
    assert_eq!(
        parse_probe(b"remove 1 99999").unwrap_err().to_string(),
        "probe id 99999 out of range (0..=32767)"
    );
}

/// One boot of the whole system running the guest script; shared by the
/// QEMU tests below (one QEMU at a time, and it takes a while).
fn module_run() -> &'static (String, Vec<String>) {
    static RUN: OnceLock<(String, Vec<String>)> = OnceLock::new();
    RUN.get_or_init(|| {
        assert!(repo_root()
            .join("guests/linux/rootfs/etc/hvtrace/module-test")
            .is_file());
        // `hv-trace run` allows one system per machine; on a shared machine
        // wait (bounded) for another one to finish rather than fail.
        let started = std::time::Instant::now();
        let out = loop {
            let out = hv_trace(
                &["run", "--duration", "120", "--linux-script", "module-test"],
                Duration::from_secs(1800),
            )
            .unwrap();
            let busy = String::from_utf8_lossy(&out.stderr).contains("a system is already running");
            if !busy || started.elapsed() > Duration::from_secs(900) {
                break out;
            }
            std::thread::sleep(Duration::from_secs(3));
        };
        let console = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "hv-trace run failed:\n{console}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = console
            .lines()
            .filter_map(|l| l.split_once("hvtrace-test: ").map(|(_, r)| r.trim_end().to_string()))
            .collect();
        (console, lines)
    })
}

fn has(lines: &[String], console: &str, want: &str) {
    assert!(
        lines.iter().any(|l| l == want),
        "missing 'hvtrace-test: {want}' in:\n{console}"
    );
}

fn value<'a>(lines: &'a [String], prefix: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| l.strip_prefix(prefix))
}

fn number(lines: &[String], console: &str, prefix: &str) -> u64 {
    value(lines, prefix)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number after '{prefix}':\n{console}"))
}

#[test]
fn module_loads_with_sysfs_events_and_version() {
    let (console, lines) = module_run();
    has(lines, console, "begin");
    has(lines, console, "module loaded");
    has(
        lines,
        console,
        "sysfs enable hypercall_fuzz probes stats test_emit version",
    );
    let modes = value(lines, "modes ").unwrap_or_default();
    for m in [
        "enable:-rw-------",
        "probes:-rw-------",
        "stats:-r--------",
        "test_emit:--w-------",
        "hypercall_fuzz:--w-------",
        "version:-r--------",
    ] {
        assert!(modes.contains(m), "{m} not in '{modes}'");
    }
    for e in ["rtos_switch", "rtos_probe", "clock_sync"] {
        has(lines, console, &format!("format {e}"));
    }
    // The field layout trace-convert relies on.
    for field in [
        "field:u64 ts_counter;",
        "field:u32 rtos_cpu;",
        "field:u8 prev_prio;",
        "field:u8 next_prio;",
        "field:u16 prev_state;",
        "field:u16 next_state;",
        "field:char prev_comm[16];",
        "field:char next_comm[16];",
        "field:u32 seq;",
    ] {
        assert!(console.contains(field), "{field} missing:\n{console}");
    }
    // Reading `probes` lists (no probes yet) without tripping over VM ids
    // the hypervisor does not have.
    assert!(
        !lines.iter().any(|l| l.starts_with("probe ") && l.contains("error")),
        "{console}"
    );
    has(lines, console, "version module 0.1.0");
    has(lines, console, "version abi 1.4");
    has(lines, console, "version hypervisor_abi 1.4");
    assert!(console.contains("ABI layout: "), "{console}");
    assert!(console.contains("values agree with hvtrace_abi.h"), "{console}");
}

#[test]
fn invalid_sysfs_writes_are_refused_with_a_reason() {
    let (console, lines) = module_run();
    for (write, errno, why) in [
        (
            "enable '2'",
            "Invalid argument",
            "enable: refused '2': enable value 2 out of range (0..=1)",
        ),
        ("enable 'yes'", "Invalid argument", "enable value 'yes' is not a number"),
        (
            "probes 'frobnicate'",
            "Invalid argument",
            "unknown command 'frobnicate'",
        ),
        ("probes 'add 1'", "Invalid argument", "missing address"),
        (
            "probes 'add 1 zzz'",
            "Invalid argument",
            "address 'zzz' is not a number",
        ),
        (
            "probes 'add 1 0x40001002'",
            "Invalid argument",
            "address 0x40001002 is not 4-byte aligned",
        ),
        (
            "probes 'add 300 0x40001000'",
            "Invalid argument",
            "vm 300 out of range (0..=255)",
        ),
        (
            "probes 'add 1 0x40001000 sideways'",
            "Invalid argument",
            "argument 'sideways': expected %xN",
        ),
        (
            "probes 'remove 1 99999'",
            "Invalid argument",
            "probe id 99999 out of range (0..=32767)",
        ),
        (
            "test_emit '0'",
            "Invalid argument",
            "count 0 out of range (1..=1048576)",
        ),
        ("test_emit '-5'", "Invalid argument", "count '-5' is not a number"),
        ("test_emit 'abc'", "Invalid argument", "count 'abc' is not a number"),
        (
            "test_emit '99999999'",
            "Invalid argument",
            "count 99999999 out of range",
        ),
    ] {
        has(lines, console, &format!("refused {write}: {errno}"));
        assert!(console.contains(why), "kernel log lacks '{why}':\n{console}");
    }
    // A well-formed request the hypervisor refuses: its error, as errno,
    // with a log line.
    has(lines, console, "refused probes 'remove 1 7': No such file or directory");
    assert!(
        console.contains("PROBE_REMOVE failed: no such VM, probe or index (hypervisor error -4)"),
        "{console}"
    );
    // Nothing is mapped at 0xdead0000 in the RTOS: the hypervisor says so.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("refused probes 'add 1 0xdead0000': ")),
        "{console}"
    );
    assert!(console.contains("PROBE_ADD failed: "), "{console}");
    has(lines, console, "non-root id 65534");
    has(lines, console, "refused non-root read: Permission denied");
    has(lines, console, "refused non-root write: Permission denied");
    assert!(!lines.iter().any(|l| l.starts_with("ACCEPTED")), "{console}");
}

#[test]
fn test_emit_records_reach_trace_cmd_with_task_names_and_stats_count_them() {
    let (console, lines) = module_run();
    has(lines, console, "enable 1");
    has(lines, console, "trace-cmd record exit 0");
    has(lines, console, "trace-cmd report exit 0");
    assert_eq!(number(lines, console, "report rtos_switch "), 1000, "{console}");
    assert!(number(lines, console, "report clock_sync ") >= 1, "{console}");
    assert!(number(lines, console, "report sched_switch ") >= 1, "{console}");
    let event = value(lines, "event ").unwrap_or_default();
    assert!(
        event.contains("rtos_switch:")
            && event.contains("prev_comm=synthetic-")
            && event.contains("next_comm=synthetic-"),
        "{event}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("event ")
            && l.contains("clock_sync:")
            && l.contains(" counter=")
            && l.contains("freq_hz=62500000")),
        "{console}"
    );
    assert_eq!(number(lines, console, "stats1 records "), 1000, "{console}");
    assert_eq!(number(lines, console, "stats1 rtos_switch "), 1000, "{console}");
    assert_eq!(number(lines, console, "stats1 drops "), 0, "{console}");
    // Records made on Linux's own core wait for the module's periodic drain
    // (an immediate doorbell there would feed on the drain's own switches).
    assert!(number(lines, console, "stats1 drains ") >= 1, "{console}");
    assert!(number(lines, console, "stats1 clock_syncs ") >= 1, "{console}");
}

#[test]
fn an_overfilled_ring_counts_drops_instead_of_corrupting() {
    let (console, lines) = module_run();
    let capacity: u64 = value(lines, "stats2 ring0 ")
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("capacity=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no ring0 capacity:\n{console}"));
    // 1000 + 20000 + 10 offered; the 20000 arrive inside one hypercall, so
    // everything past one ring's worth is dropped.
    let records = number(lines, console, "stats2 records ");
    let drops = number(lines, console, "stats2 drops ");
    assert_eq!(records + drops, 21_010, "{console}");
    assert_eq!(drops, 20_000 - capacity, "{console}");
    assert_eq!(number(lines, console, "stats2 seq_gaps "), drops, "{console}");
    assert_eq!(number(lines, console, "stats2 resyncs "), 0, "{console}");
    assert_eq!(number(lines, console, "stats2 unknown_records "), 0, "{console}");
}

#[test]
fn module_unloads_cleanly_and_reloads() {
    let (console, lines) = module_run();
    has(lines, console, "enable 0");
    has(lines, console, "rmmod ok");
    has(lines, console, "sysfs gone");
    has(lines, console, "irq freed");
    has(lines, console, "reinsmod ok");
    has(lines, console, "version again module 0.1.0");
    has(lines, console, "end");
    assert!(console.contains("hvtrace unloaded after"), "{console}");
}
