//! Times trace-convert's decoding alone (no indexing) on a file: the floor for opening.
fn main() {
    let p = std::env::args().nth(1).expect("FILE");
    let t = std::time::Instant::now();
    let trace = trace_convert::Trace::open(&p).unwrap();
    let mut n = 0u64;
    for s in trace.streams() {
        let t1 = std::time::Instant::now();
        let mut k = 0u64;
        for e in s {
            e.unwrap();
            k += 1;
        }
        println!("stream: {k} events in {:.3?}", t1.elapsed());
        n += k;
    }
    println!("{n} events decoded in {:.3?}", t.elapsed());
}
