//! PSCI calls from guests (trapped SMCs): which are allowed and how they map
//! onto the firmware.

/// PSCI function ids (SMC32/SMC64 forms).
pub mod func {
    pub const VERSION: u32 = 0x8400_0000;
    pub const CPU_SUSPEND: u32 = 0xC400_0001;
    pub const CPU_OFF: u32 = 0x8400_0002;
    pub const CPU_ON_32: u32 = 0x8400_0003;
    pub const CPU_ON: u32 = 0xC400_0003;
    pub const AFFINITY_INFO: u32 = 0xC400_0004;
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    pub const FEATURES: u32 = 0x8400_000A;
}

pub const SUCCESS: i64 = 0;
pub const NOT_SUPPORTED: i64 = -1;
pub const INVALID_PARAMETERS: i64 = -2;
pub const DENIED: i64 = -3;
pub const ALREADY_ON: i64 = -4;

/// What the hypervisor does for a guest's PSCI call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Answer at once with this value in x0.
    Return(i64),
    /// Start one of the VM's own cores at `entry` (IPA) with `context` in x0.
    CpuOn {
        cpu: u8,
        entry: u64,
        context: u64,
    },
    /// Power the whole machine off / reset it.
    SystemOff,
    SystemReset,
    /// Stop the calling vCPU.
    CpuOff,
}

/// Decides a PSCI call from a VM that owns `own_cpus`; `online(cpu)` says
/// whether a core already runs.
pub fn handle(function: u64, args: [u64; 3], own_cpus: &[u8], online: impl Fn(u8) -> bool) -> Action {
    let Ok(function) = u32::try_from(function) else {
        return Action::Return(NOT_SUPPORTED);
    };
    match function {
        func::VERSION => Action::Return(0x1_0001),    // PSCI 1.1, as QEMU's firmware
        func::MIGRATE_INFO_TYPE => Action::Return(2), // no trusted OS to migrate
        func::FEATURES => {
            let supported = [
                func::VERSION,
                func::CPU_OFF,
                func::CPU_ON,
                func::CPU_ON_32,
                func::AFFINITY_INFO,
                func::MIGRATE_INFO_TYPE,
                func::SYSTEM_OFF,
                func::SYSTEM_RESET,
                func::FEATURES,
            ];
            Action::Return(if supported.contains(&(args[0] as u32)) {
                SUCCESS
            } else {
                NOT_SUPPORTED
            })
        }
        func::CPU_ON | func::CPU_ON_32 => {
            let Some(cpu) = own_core(args[0], own_cpus) else {
                return Action::Return(DENIED);
            };
            if online(cpu) {
                return Action::Return(ALREADY_ON);
            }
            Action::CpuOn {
                cpu,
                entry: args[1],
                context: args[2],
            }
        }
        func::AFFINITY_INFO => match own_core(args[0], own_cpus) {
            Some(cpu) => Action::Return(if online(cpu) { 0 } else { 1 }),
            None => Action::Return(INVALID_PARAMETERS),
        },
        func::CPU_OFF => Action::CpuOff,
        func::SYSTEM_OFF => Action::SystemOff,
        func::SYSTEM_RESET => Action::SystemReset,
        _ => Action::Return(NOT_SUPPORTED),
    }
}

/// The core an MPIDR value names, if it belongs to the VM (QEMU virt: Aff0).
fn own_core(mpidr: u64, own_cpus: &[u8]) -> Option<u8> {
    if mpidr & !0xff != 0 {
        return None;
    }
    let cpu = mpidr as u8;
    own_cpus.contains(&cpu).then_some(cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_on_only_for_the_vms_own_cores() {
        let own = [0u8, 1, 2];
        assert_eq!(
            handle(func::CPU_ON.into(), [2, 0x4440_0000, 7], &own, |_| false),
            Action::CpuOn {
                cpu: 2,
                entry: 0x4440_0000,
                context: 7
            }
        );
        // Core 3 is the RTOS's: Linux may not start it.
        assert_eq!(
            handle(func::CPU_ON.into(), [3, 0x4440_0000, 0], &own, |_| false),
            Action::Return(DENIED)
        );
        assert_eq!(
            handle(func::CPU_ON.into(), [1, 0, 0], &own, |c| c == 1),
            Action::Return(ALREADY_ON)
        );
        assert_eq!(
            handle(func::CPU_ON.into(), [0x100, 0, 0], &own, |_| false),
            Action::Return(DENIED)
        );
    }

    #[test]
    fn system_calls_and_unknown_functions() {
        assert_eq!(
            handle(func::SYSTEM_OFF.into(), [0; 3], &[0], |_| true),
            Action::SystemOff
        );
        assert_eq!(
            handle(func::VERSION.into(), [0; 3], &[0], |_| true),
            Action::Return(0x1_0001)
        );
        assert_eq!(
            handle(0xC400_0012, [0; 3], &[0], |_| true),
            Action::Return(NOT_SUPPORTED)
        );
        assert_eq!(handle(u64::MAX, [0; 3], &[0], |_| true), Action::Return(NOT_SUPPORTED));
        assert_eq!(
            handle(func::FEATURES.into(), [func::CPU_ON.into(), 0, 0], &[0], |_| true),
            Action::Return(SUCCESS)
        );
        assert_eq!(
            handle(func::AFFINITY_INFO.into(), [5, 0, 0], &[0], |_| true),
            Action::Return(INVALID_PARAMETERS)
        );
    }
}
