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
}

pub fn profile_hits(args: ProfileHitsArgs) -> Result<()> {
    let report = profile_hits::profile(args.seconds)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}
