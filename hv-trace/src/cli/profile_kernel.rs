//! `hv-trace profile-kernel`: where a bench workload's instructions go.

use anyhow::Result;
use hv_trace::measure::profile_kernel::{self, Job, ProfileKernelArgs};

pub fn profile_kernel(args: ProfileKernelArgs) -> Result<()> {
    let job = Job::new(args)?;
    let report = profile_kernel::profile_kernel(&job)?;
    if job.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}
