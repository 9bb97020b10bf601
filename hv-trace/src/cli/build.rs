//! `hv-trace build`: build target artifacts into the cache and print their paths.

use anyhow::Result;
use hv_trace::target::artifacts::{self, Options, Target};

pub fn build(target: Target, json: bool, opts: Options) -> Result<()> {
    let built = artifacts::build(target, &opts)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&built)?);
    } else {
        for (name, path) in &built {
            println!("{name:<14} {}", path.display());
        }
    }
    Ok(())
}
