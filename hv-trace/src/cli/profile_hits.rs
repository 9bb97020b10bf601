//! `hv-trace profile-hits`: the hypervisor's instructions per probe hit.

use anyhow::Result;
use hv_trace::measure::profile_hits;

#[derive(clap::Args)]
pub struct ProfileHitsArgs {
    /// Wall seconds to log the hypervisor's instructions.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Print the numbers as JSON.
    #[arg(long)]
    json: bool,
    /// The RTOS probe to profile instead of the switch probe at OSCtxSw, as
    /// `probe add` takes it (e.g. 'OSTimeDly ticks OSTime $comm $prio' or
    /// 'OSSemPend%return'; Linux keeps its switch probe).
    #[arg(long, value_name = "SPEC")]
    rtos_probe: Option<String>,
}

pub fn profile_hits(args: ProfileHitsArgs) -> Result<()> {
    let report = profile_hits::profile(args.seconds, args.rtos_probe.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}
