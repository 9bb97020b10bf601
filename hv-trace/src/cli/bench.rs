//! `hv-trace bench`: the overhead benchmark (see `hv_trace::measure::bench`).

use anyhow::Result;
use hv_trace::measure::bench::{self, BenchArgs, BenchPlan};
use std::process::ExitCode;

pub fn bench(args: BenchArgs) -> Result<ExitCode> {
    bench::run(BenchPlan::new(args)?)
}
