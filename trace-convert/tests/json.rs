//! The Perfetto JSON export read back and compared with the trace it came
//! from: every event's name, CPU, time and fields, every loss, and 64-bit
//! values to the last bit.

use std::path::Path;

use serde_json::Value as Json;
use trace_convert::pipeline::{prepare, write_events, Format};
use trace_convert::{Missed, Trace, Value};

/// Writes `input` as JSON and reads the result back.
fn exported(input: &Path) -> Vec<Json> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let trace = Trace::open(input).unwrap();
    let (meta, events) = prepare(std::slice::from_ref(&trace), false).unwrap();
    write_events(&meta, events, Format::Json, &out, Default::default()).unwrap();
    let doc: Json = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    doc["traceEvents"].as_array().unwrap().clone()
}

/// A JSON value as the integer it stands for (a number, or a decimal or
/// 0x-hex string for values beyond 2^53).
fn integer(j: &Json) -> i128 {
    match j {
        Json::Number(n) => n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)).unwrap(),
        Json::String(s) => match s.strip_prefix("0x") {
            Some(h) => i128::from_str_radix(h, 16).unwrap(),
            None => s.parse().unwrap(),
        },
        other => panic!("not an integer: {other}"),
    }
}

fn compare(input: &Path) -> (usize, usize) {
    let json = exported(input);
    let trace = Trace::open(input).unwrap();
    let (_, events) = prepare(std::slice::from_ref(&trace), false).unwrap();
    let mut instants = json.iter().filter(|e| e["ph"] == "i");
    let (mut compared, mut lost) = (0, 0);
    for ev in events {
        let ev = ev.unwrap();
        if ev.missed_before != Missed::None {
            let j = instants.next().expect("a lost-events instant");
            assert_eq!(j["name"], "lost events");
            assert_eq!(j["tid"], ev.cpu);
            match ev.missed_before {
                Missed::Count(n) => assert_eq!(integer(&j["args"]["count"]), i128::from(n)),
                _ => assert_eq!(j["args"]["count"], "unknown"),
            }
            lost += 1;
        }
        if ev.is("sched", "sched_switch") {
            continue; // slices, not instants
        }
        let j = instants.next().expect("an instant per event");
        assert_eq!(j["name"], format!("{}:{}", ev.system(), ev.name()));
        assert_eq!(j["tid"], ev.cpu);
        let ts: f64 = j["ts"].as_f64().unwrap();
        assert!((ts * 1000.0 - ev.ts_ns as f64).abs() < 1.0, "{ts} vs {}", ev.ts_ns);
        for (name, v) in ev.named_fields() {
            let got = &j["args"][name];
            match v {
                Value::Int(i) => assert_eq!(integer(got), i128::from(*i), "{name}"),
                Value::UInt(u) => assert_eq!(integer(got), i128::from(*u), "{name}"),
                other => assert_eq!(got.as_str().unwrap(), other.to_string(), "{name}"),
            }
        }
        compared += 1;
    }
    assert!(instants.next().is_none(), "instants without an event");
    (compared, lost)
}

/// Regression: lost events did not appear in the JSON at all.
#[test]
fn a_trace_cmd_file_with_losses_round_trips() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tc-v6.dat");
    let (compared, lost) = compare(&fixture);
    assert!(compared > 300, "{compared}");
    assert!(lost > 0, "the fixture has lost events");
}

/// Regression: 64-bit values (the RTOS's probe PCs, 0xffff0000_4010_xxxx)
/// were written as JSON numbers, which readers round to doubles.
#[test]
fn values_beyond_2_to_the_53_keep_every_bit() {
    use std::sync::Arc;
    use trace_convert::write::json::JsonWriter;
    use trace_convert::write::EventSink;
    use trace_convert::{Event, TraceMeta};
    let format = Arc::new(trace_convert::synth::rtos_probe_format());
    let pc = 0xffff_0000_4010_5af1u64;
    let ev = Event {
        ts_ns: 1_000,
        cpu: 1,
        pid: 100_005,
        comm: Arc::from("ctrl_loop"),
        format: format.clone(),
        fields: vec![
            Value::UInt(u64::MAX - 1),
            Value::UInt(1),
            Value::UInt(7),
            Value::UInt(pc),
            Value::UInt(5),
            Value::Str("ctrl_loop".into()),
            Value::UInt(9),
        ],
        flags: 0,
        preempt_count: 0,
        buffer: 0,
        missed_before: Missed::None,
    };
    let meta = TraceMeta {
        cpus: 2,
        formats: vec![format],
        ..TraceMeta::default()
    };
    let mut out = Vec::new();
    let mut w = JsonWriter::new(&mut out, &meta).unwrap();
    w.event(&ev).unwrap();
    w.finish().unwrap();
    drop(w);
    let doc: Json = serde_json::from_slice(&out).unwrap();
    let probe = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "hvtrace:rtos_probe")
        .unwrap()
        .clone();
    assert_eq!(probe["args"]["pc"], "0xffff000040105af1");
    assert_eq!(integer(&probe["args"]["pc"]), i128::from(pc));
    assert_eq!(integer(&probe["args"]["ts_counter"]), i128::from(u64::MAX - 1));
    // Small values stay numbers.
    assert_eq!(probe["args"]["probe_id"], 7);
}
