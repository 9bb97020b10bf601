//! `cargo run -p viewer --example gen_merged -- OUT.dat [LINUX_SWITCHES] [LOST_EVERY]`: writes a
//! merged demo trace (synthetic Linux + RTOS run through trace-convert's merge).

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: gen_merged OUT.dat [N] [LOST_EVERY]"))?;
    let n = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let lost = args.next().map(|s| s.parse()).transpose()?.unwrap_or(500);
    viewer::fixture::write_merged(std::path::Path::new(&out), n, lost)?;
    println!("wrote {out}");
    Ok(())
}
