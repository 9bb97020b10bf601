//! `hv-trace probe add|remove|list`: probes in the running system, through
//! the hvtrace module's control files.

use anyhow::{Context, Result};
use hv_trace::target::control::Control;
use hv_trace::target::hvtrace;
use hv_trace::target::probe::{ProbeKind, Site, Vm};
use hv_trace::target::session;
use hv_trace::target::system;

/// The running system's control channel and the images it booted.
fn connect() -> Result<(Control, hv_trace::target::artifacts::Artifacts)> {
    let dir = session::dir();
    let images = system::load_artifacts(&dir)?;
    Ok((Control::connect(&dir)?, images))
}

pub fn add(target: &str, vm: Vm, kind: Option<ProbeKind>) -> Result<()> {
    let (mut ctl, images) = connect()?;
    let site = Site::resolve(&images, target, vm, kind)?;
    let id = hvtrace::add(&mut ctl, &site)?;
    println!(
        "probe {id}: {} ({:#x}) in {:?}, {:?}",
        site.label, site.addr, vm, site.kind
    );
    Ok(())
}

pub fn remove(target: &str, vm: Vm) -> Result<()> {
    let (mut ctl, images) = connect()?;
    let id = match target.parse::<u16>() {
        Ok(id) => id,
        Err(_) => {
            let site = Site::resolve(&images, target, vm, None)?;
            hvtrace::find(&mut ctl, vm.id(), site.addr)?
                .with_context(|| format!("no probe at {} in {vm:?}", site.label))?
                .id
        }
    };
    hvtrace::remove(&mut ctl, vm.id(), id)?;
    println!("probe {id} removed");
    Ok(())
}

pub fn list() -> Result<()> {
    let mut ctl = Control::connect(&session::dir())?;
    print!("{}", hvtrace::list_text(&mut ctl)?);
    Ok(())
}
