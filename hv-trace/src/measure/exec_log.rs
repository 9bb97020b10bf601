//! Replaying QEMU's exec log (`-d exec,nochain` with `-singlestep`): one
//! `Trace` line per instruction-sized block a core is about to run, and the
//! lines that take a logged block back. The replay hands each executed
//! instruction's core and PC to the caller, in order.

use std::collections::BTreeMap;
use std::io::BufRead;

/// QEMU's CPU indices are small; anything larger is a garbled line.
const MAX_CPUS: u32 = 256;

/// One exec log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// `Trace 0: 0x7f94… [0000000000000000/0000000040206f30/00000061/ff080201] sym`:
    /// CPU 0 is about to run the block at 0x40206f30.
    Block { cpu: u32, host: u64, pc: u64 },
    /// `Stopped execution of TB chain before 0x7f94… [0000000040206f30] sym`:
    /// the block just logged (on some CPU) did not run.
    Stopped { host: u64, pc: u64 },
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

fn line_kind(line: &[u8]) -> Option<Line> {
    let line = std::str::from_utf8(line).ok()?;
    if let Some(rest) = line.strip_prefix("Trace ") {
        let (cpu, rest) = rest.split_once(':')?;
        let cpu: u32 = cpu.trim().parse().ok().filter(|&c| c < MAX_CPUS)?;
        let (host, rest) = rest.split_once('[')?;
        let fields = rest.split_once(']')?.0;
        let pc = hex(fields.split('/').nth(1)?)?;
        Some(Line::Block {
            cpu,
            host: hex(host)?,
            pc,
        })
    } else {
        let rest = line.strip_prefix("Stopped execution of TB chain before ")?;
        let (host, rest) = rest.split_once('[')?;
        let pc = hex(rest.split_once(']')?.0)?;
        Some(Line::Stopped { host: hex(host)?, pc })
    }
}

/// What replaying a log saw besides the instructions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lines {
    /// Instruction lines QEMU took back (see `Parsed::retracted`).
    pub retracted: u64,
    /// Lines that are neither instructions nor retractions.
    pub other: u64,
}

/// Replay an exec log: `executed(cpu, pc)` for every block that ran, in log
/// order per core. QEMU logs a block before running it and takes it back
/// with `Stopped execution of TB chain before …` when a pending interrupt
/// stops it first, so each core's last block is held until its next one.
pub(crate) fn replay(log: impl BufRead, mut executed: impl FnMut(u32, u64)) -> std::io::Result<Lines> {
    replay_numbered(log, |_, _, _| {}, |cpu, pc, _| executed(cpu, pc))
}

/// [`replay`] with line numbers: `logged(cpu, pc, line)` for every block as
/// it is read, `executed(cpu, pc, line)` once it is known to have run.
pub(crate) fn replay_numbered(
    mut log: impl BufRead,
    mut logged: impl FnMut(u32, u64, u64),
    mut executed: impl FnMut(u32, u64, u64),
) -> std::io::Result<Lines> {
    let mut lines = Lines::default();
    // Per core, the last block logged and not counted yet: (host address, PC, line number).
    let mut pending: BTreeMap<u32, Option<(u64, u64, u64)>> = BTreeMap::new();
    let mut line = Vec::with_capacity(256);
    let mut number = 0u64;
    loop {
        line.clear();
        if log.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        match line_kind(&line) {
            Some(Line::Block { cpu, host, pc }) => {
                logged(cpu, pc, number);
                let slot = pending.entry(cpu).or_default();
                if let Some((_, pc, n)) = slot.replace((host, pc, number)) {
                    executed(cpu, pc, n);
                }
            }
            Some(Line::Stopped { host, pc }) => {
                // The most recent matching block of any core (the line does
                // not say which core stopped).
                let stopped = pending
                    .values_mut()
                    .filter(|p| p.is_some_and(|(h, p, _)| (h, p) == (host, pc)))
                    .max_by_key(|p| p.map(|(_, _, n)| n));
                match stopped {
                    Some(p) => {
                        *p = None;
                        lines.retracted += 1;
                    }
                    None => lines.other += 1,
                }
            }
            None => lines.other += 1,
        }
    }
    for (&cpu, p) in &mut pending {
        if let Some((_, pc, n)) = p.take() {
            executed(cpu, pc, n);
        }
    }
    Ok(lines)
}
