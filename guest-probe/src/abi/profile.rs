//! The OS profile blob: everything the hypervisor needs to read an OS's
//! task state, as plain fixed-layout data.
//!
//! The host extracts it from the guest's ELF and DWARF
//! ([`crate::profile`]), serializes it with [`OsProfile::to_bytes`] and
//! passes it with `PROFILE_SET`; the hypervisor parses it with
//! [`OsProfile::from_bytes`], which validates everything before the
//! hypervisor trusts any offset. The byte image is the `repr(C)` layout in
//! little-endian order (checked by a test), so C code can use the struct in
//! the generated header directly.

use core::mem::{offset_of, size_of};

/// `"HVPF"` in little-endian.
pub const PROFILE_MAGIC: u32 = 0x4650_5648;
/// Version of the blob layout.
pub const PROFILE_VERSION: u16 = 1;
/// Largest plausible task control block / task_struct size we accept.
pub const MAX_STRUCT_SIZE: u32 = 64 * 1024;
/// Longest task name the hypervisor reads.
pub const MAX_NAME_LEN: u32 = 64;

/// Which OS a profile describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
pub enum OsKind {
    /// uC/OS-II (or a compatible RTOS).
    UcosII = 1,
    /// Linux.
    Linux = 2,
}

/// How the task name is stored in the TCB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
pub enum NameKind {
    /// No name member.
    None = 0,
    /// A pointer to a NUL-terminated string (`INT8U *OSTCBTaskName`).
    Pointer = 1,
    /// An inline character array (`char OSTCBTaskName[N]`).
    Inline = 2,
}

/// How Linux's `current` is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
pub enum CurrentTask {
    /// Not applicable (not Linux).
    None = 0,
    /// arm64 Linux ≥ 4.x: SP_EL0 holds the current `task_struct` pointer
    /// while in the kernel.
    SpEl0 = 1,
}

/// A struct member: byte offset and size; size 0 means absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
pub struct Field {
    /// Byte offset in the struct.
    pub offset: u32,
    /// Size in bytes (0 = the member does not exist).
    pub size: u32,
}

impl Field {
    /// An absent member.
    pub const ABSENT: Field = Field { offset: 0, size: 0 };

    /// Whether the member exists.
    pub const fn present(self) -> bool {
        self.size != 0
    }
}

/// A global variable: guest virtual address and size; size 0 means absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
pub struct Global {
    /// Guest virtual address.
    pub va: u64,
    /// Size in bytes (0 = the variable does not exist).
    pub size: u32,
    /// Zero.
    #[cfg_attr(feature = "std", serde(skip))]
    pub reserved: u32,
}

impl Global {
    /// An absent global.
    pub const ABSENT: Global = Global {
        va: 0,
        size: 0,
        reserved: 0,
    };

    /// Whether the variable exists.
    pub const fn present(self) -> bool {
        self.size != 0
    }
}

/// The profile blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
pub struct OsProfile {
    /// [`PROFILE_MAGIC`].
    pub magic: u32,
    /// [`PROFILE_VERSION`].
    pub version: u16,
    /// [`OsKind`] as its raw value.
    pub os_kind: u16,
    /// `size_of::<OsProfile>()`.
    pub size: u32,
    /// [`NameKind`] as its raw value.
    pub name_kind: u32,

    /// uC/OS-II `OSTCBCur` (pointer to the running task's TCB).
    pub os_tcb_cur: Global,
    /// uC/OS-II `OSTCBHighRdy` (pointer to the next task's TCB).
    pub os_tcb_high_rdy: Global,
    /// uC/OS-II `OSPrioCur`.
    pub os_prio_cur: Global,
    /// uC/OS-II `OSPrioHighRdy`.
    pub os_prio_high_rdy: Global,
    /// uC/OS-II `OSTime`.
    pub os_time: Global,

    /// `sizeof(OS_TCB)`.
    pub tcb_size: u32,
    /// `OSTCBStkPtr` (required).
    pub tcb_stk_ptr: Field,
    /// `OSTCBPrio` (required).
    pub tcb_prio: Field,
    /// `OSTCBStat` (required).
    pub tcb_stat: Field,
    /// `OSTCBStatPend` (optional).
    pub tcb_stat_pend: Field,
    /// `OSTCBTaskName` (optional; see `name_kind`).
    pub tcb_task_name: Field,
    /// `OSTCBId` (optional).
    pub tcb_id: Field,
    /// `OSTCBDly` (optional).
    pub tcb_dly: Field,
    /// `OSTCBCtxSwCtr` (optional).
    pub tcb_ctx_sw_ctr: Field,

    /// [`CurrentTask`] as its raw value (Linux).
    pub linux_current: u32,
    /// `sizeof(struct task_struct)` (Linux).
    pub task_struct_size: u32,
    /// `task_struct.comm` (Linux).
    pub task_comm: Field,
    /// `task_struct.pid` (Linux).
    pub task_pid: Field,
    /// `task_struct.prio` (Linux, optional).
    pub task_prio: Field,
}

/// Size of the blob.
pub const PROFILE_SIZE: usize = size_of::<OsProfile>();
const _: () = assert!(PROFILE_SIZE == 200);

/// Why a profile blob was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The blob is shorter than the struct.
    #[error("profile blob truncated: {0} bytes, {PROFILE_SIZE} needed")]
    Truncated(usize),
    /// The magic is wrong.
    #[error("bad profile magic {0:#010x}")]
    BadMagic(u32),
    /// Another layout version.
    #[error("unsupported profile version {0}")]
    UnsupportedVersion(u16),
    /// The size field disagrees with this version's layout.
    #[error("profile size field {0} does not match {PROFILE_SIZE}")]
    BadSize(u32),
    /// Unknown OS kind.
    #[error("unknown OS kind {0}")]
    UnknownOsKind(u16),
    /// Unknown name kind or current-task method.
    #[error("unknown {what} {value}")]
    UnknownEnum {
        /// Which field.
        what: &'static str,
        /// The value.
        value: u32,
    },
    /// A required global is absent (or its address is 0).
    #[error("required global {0} is missing")]
    MissingGlobal(&'static str),
    /// A required member is absent.
    #[error("required member {0} is missing")]
    MissingField(&'static str),
    /// A member has an implausible size.
    #[error("member {field} has unsupported size {size}")]
    BadFieldSize {
        /// Which member.
        field: &'static str,
        /// Its size.
        size: u32,
    },
    /// A member does not fit in the struct.
    #[error("member {field} at {offset}+{size} lies outside the {struct_size}-byte struct")]
    FieldOutOfRange {
        /// Which member.
        field: &'static str,
        /// Its offset.
        offset: u32,
        /// Its size.
        size: u32,
        /// The struct size.
        struct_size: u32,
    },
    /// The struct size is zero or implausibly large.
    #[error("struct size {0} out of range")]
    BadStructSize(u32),
}

/// Calls `$m!(field, kind)` for every scalar of the layout, in order.
macro_rules! for_each_scalar {
    ($m:ident) => {
        $m!(magic, u32);
        $m!(version, u16);
        $m!(os_kind, u16);
        $m!(size, u32);
        $m!(name_kind, u32);
        $m!(os_tcb_cur, global);
        $m!(os_tcb_high_rdy, global);
        $m!(os_prio_cur, global);
        $m!(os_prio_high_rdy, global);
        $m!(os_time, global);
        $m!(tcb_size, u32);
        $m!(tcb_stk_ptr, field);
        $m!(tcb_prio, field);
        $m!(tcb_stat, field);
        $m!(tcb_stat_pend, field);
        $m!(tcb_task_name, field);
        $m!(tcb_id, field);
        $m!(tcb_dly, field);
        $m!(tcb_ctx_sw_ctr, field);
        $m!(linux_current, u32);
        $m!(task_struct_size, u32);
        $m!(task_comm, field);
        $m!(task_pid, field);
        $m!(task_prio, field);
    };
}

fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    b[at..at + bytes.len()].copy_from_slice(bytes);
}

fn get<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

impl OsProfile {
    /// An empty profile of `kind`: header filled in, everything else absent.
    pub const fn empty(kind: OsKind) -> Self {
        Self {
            magic: PROFILE_MAGIC,
            version: PROFILE_VERSION,
            os_kind: kind as u16,
            size: PROFILE_SIZE as u32,
            name_kind: NameKind::None as u32,
            os_tcb_cur: Global::ABSENT,
            os_tcb_high_rdy: Global::ABSENT,
            os_prio_cur: Global::ABSENT,
            os_prio_high_rdy: Global::ABSENT,
            os_time: Global::ABSENT,
            tcb_size: 0,
            tcb_stk_ptr: Field::ABSENT,
            tcb_prio: Field::ABSENT,
            tcb_stat: Field::ABSENT,
            tcb_stat_pend: Field::ABSENT,
            tcb_task_name: Field::ABSENT,
            tcb_id: Field::ABSENT,
            tcb_dly: Field::ABSENT,
            tcb_ctx_sw_ctr: Field::ABSENT,
            linux_current: CurrentTask::None as u32,
            task_struct_size: 0,
            task_comm: Field::ABSENT,
            task_pid: Field::ABSENT,
            task_prio: Field::ABSENT,
        }
    }

    /// The little-endian byte image (the `repr(C)` layout).
    pub fn to_bytes(&self) -> [u8; PROFILE_SIZE] {
        let mut b = [0u8; PROFILE_SIZE];
        macro_rules! w {
            ($f:ident, u32) => {
                put(&mut b, offset_of!(OsProfile, $f), &self.$f.to_le_bytes())
            };
            ($f:ident, u16) => {
                put(&mut b, offset_of!(OsProfile, $f), &self.$f.to_le_bytes())
            };
            ($f:ident, global) => {{
                let at = offset_of!(OsProfile, $f);
                put(&mut b, at, &self.$f.va.to_le_bytes());
                put(&mut b, at + 8, &self.$f.size.to_le_bytes());
                put(&mut b, at + 12, &self.$f.reserved.to_le_bytes());
            }};
            ($f:ident, field) => {{
                let at = offset_of!(OsProfile, $f);
                put(&mut b, at, &self.$f.offset.to_le_bytes());
                put(&mut b, at + 4, &self.$f.size.to_le_bytes());
            }};
        }
        for_each_scalar!(w);
        b
    }

    /// Parses and validates a byte image (the hypervisor's entry point).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProfileError> {
        if bytes.len() < PROFILE_SIZE {
            return Err(ProfileError::Truncated(bytes.len()));
        }
        let b = &bytes[..PROFILE_SIZE];
        let mut p = Self::empty(OsKind::UcosII);
        macro_rules! r {
            ($f:ident, u32) => {
                p.$f = u32::from_le_bytes(get(b, offset_of!(OsProfile, $f)))
            };
            ($f:ident, u16) => {
                p.$f = u16::from_le_bytes(get(b, offset_of!(OsProfile, $f)))
            };
            ($f:ident, global) => {{
                let at = offset_of!(OsProfile, $f);
                p.$f = Global {
                    va: u64::from_le_bytes(get(b, at)),
                    size: u32::from_le_bytes(get(b, at + 8)),
                    reserved: u32::from_le_bytes(get(b, at + 12)),
                };
            }};
            ($f:ident, field) => {{
                let at = offset_of!(OsProfile, $f);
                p.$f = Field {
                    offset: u32::from_le_bytes(get(b, at)),
                    size: u32::from_le_bytes(get(b, at + 4)),
                };
            }};
        }
        for_each_scalar!(r);
        p.validate()?;
        Ok(p)
    }

    /// The OS kind, if valid.
    pub const fn kind(&self) -> Option<OsKind> {
        match self.os_kind {
            1 => Some(OsKind::UcosII),
            2 => Some(OsKind::Linux),
            _ => None,
        }
    }

    /// The task-name storage, if valid.
    pub const fn name_kind(&self) -> Option<NameKind> {
        match self.name_kind {
            0 => Some(NameKind::None),
            1 => Some(NameKind::Pointer),
            2 => Some(NameKind::Inline),
            _ => None,
        }
    }

    /// Checks everything the hypervisor relies on.
    pub fn validate(&self) -> Result<(), ProfileError> {
        use ProfileError::*;
        if self.magic != PROFILE_MAGIC {
            return Err(BadMagic(self.magic));
        }
        if self.version != PROFILE_VERSION {
            return Err(UnsupportedVersion(self.version));
        }
        if self.size != PROFILE_SIZE as u32 {
            return Err(BadSize(self.size));
        }
        let name_kind = self.name_kind().ok_or(UnknownEnum {
            what: "name kind",
            value: self.name_kind,
        })?;
        match self.kind().ok_or(UnknownOsKind(self.os_kind))? {
            OsKind::UcosII => {
                for (name, g, sizes) in [
                    ("OSTCBCur", self.os_tcb_cur, &[4u32, 8][..]),
                    ("OSTCBHighRdy", self.os_tcb_high_rdy, &[4, 8]),
                ] {
                    if !g.present() || g.va == 0 {
                        return Err(MissingGlobal(name));
                    }
                    if !sizes.contains(&g.size) {
                        return Err(BadFieldSize {
                            field: name,
                            size: g.size,
                        });
                    }
                }
                let s = self.tcb_size;
                if s == 0 || s > MAX_STRUCT_SIZE {
                    return Err(BadStructSize(s));
                }
                let fields: [(&'static str, Field, bool, &[u32]); 8] = [
                    ("OSTCBStkPtr", self.tcb_stk_ptr, true, &[4, 8]),
                    ("OSTCBPrio", self.tcb_prio, true, &[1, 2]),
                    ("OSTCBStat", self.tcb_stat, true, &[1, 2]),
                    ("OSTCBStatPend", self.tcb_stat_pend, false, &[1, 2]),
                    ("OSTCBTaskName", self.tcb_task_name, false, &[]),
                    ("OSTCBId", self.tcb_id, false, &[1, 2, 4]),
                    ("OSTCBDly", self.tcb_dly, false, &[1, 2, 4, 8]),
                    ("OSTCBCtxSwCtr", self.tcb_ctx_sw_ctr, false, &[4, 8]),
                ];
                for (name, f, required, sizes) in fields {
                    check_field(name, f, required, sizes, s)?;
                }
                let name = self.tcb_task_name;
                match (name_kind, name.present()) {
                    (NameKind::None, false) => {}
                    (NameKind::Pointer, true) if name.size == 4 || name.size == 8 => {}
                    (NameKind::Inline, true) if name.size <= MAX_NAME_LEN => {}
                    _ => {
                        return Err(BadFieldSize {
                            field: "OSTCBTaskName",
                            size: name.size,
                        })
                    }
                }
            }
            OsKind::Linux => {
                if self.linux_current != CurrentTask::SpEl0 as u32 {
                    return Err(UnknownEnum {
                        what: "current-task method",
                        value: self.linux_current,
                    });
                }
                let s = self.task_struct_size;
                if s == 0 || s > MAX_STRUCT_SIZE {
                    return Err(BadStructSize(s));
                }
                check_field("comm", self.task_comm, true, &[16], s)?;
                check_field("pid", self.task_pid, true, &[4], s)?;
                check_field("prio", self.task_prio, false, &[4], s)?;
            }
        }
        Ok(())
    }
}

fn check_field(
    name: &'static str,
    f: Field,
    required: bool,
    sizes: &[u32],
    struct_size: u32,
) -> Result<(), ProfileError> {
    if !f.present() {
        return if required {
            Err(ProfileError::MissingField(name))
        } else {
            Ok(())
        };
    }
    if !sizes.is_empty() && !sizes.contains(&f.size) {
        return Err(ProfileError::BadFieldSize {
            field: name,
            size: f.size,
        });
    }
    if u64::from(f.offset) + u64::from(f.size) > u64::from(struct_size) {
        return Err(ProfileError::FieldOutOfRange {
            field: name,
            offset: f.offset,
            size: f.size,
            struct_size,
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plausible uC/OS-II profile (LP64 layout of the classic OS_TCB).
    pub(crate) fn ucos() -> OsProfile {
        let mut p = OsProfile::empty(OsKind::UcosII);
        p.os_tcb_cur = Global {
            va: 0xFFFF_0000_4012_0000,
            size: 8,
            reserved: 0,
        };
        p.os_tcb_high_rdy = Global {
            va: 0xFFFF_0000_4012_0008,
            size: 8,
            reserved: 0,
        };
        p.os_prio_cur = Global {
            va: 0xFFFF_0000_4012_0010,
            size: 1,
            reserved: 0,
        };
        p.tcb_size = 120;
        p.tcb_stk_ptr = Field { offset: 0, size: 8 };
        p.tcb_prio = Field { offset: 58, size: 1 };
        p.tcb_stat = Field { offset: 56, size: 1 };
        p.tcb_task_name = Field { offset: 96, size: 8 };
        p.name_kind = NameKind::Pointer as u32;
        p
    }

    #[test]
    fn byte_image_is_the_repr_c_layout() {
        let p = ucos();
        let b = p.to_bytes();
        assert_eq!(OsProfile::from_bytes(&b), Ok(p));
        #[cfg(target_endian = "little")]
        {
            // The fields end 4 bytes before the size (trailing padding to the
            // 8-byte alignment, which to_bytes writes as zeros): compare the
            // field bytes only, as padding holds whatever was there.
            let end = core::mem::offset_of!(OsProfile, task_prio) + core::mem::size_of::<Field>();
            assert_eq!(end, PROFILE_SIZE - 4);
            let mut raw = [0u8; PROFILE_SIZE];
            // SAFETY: `raw` is PROFILE_SIZE bytes, the size of OsProfile;
            // write_unaligned needs no alignment.
            unsafe { core::ptr::write_unaligned(raw.as_mut_ptr().cast::<OsProfile>(), p) };
            assert_eq!(raw[..end], b[..end]);
            assert_eq!(b[end..], [0; 4]);
        }
        assert_eq!(&b[0..4], b"HVPF");
    }

    #[test]
    fn validation_errors() {
        use ProfileError::*;
        let ok = ucos();
        type Mutation = fn(&mut OsProfile);
        let cases: [(Mutation, ProfileError); 9] = [
            (|p| p.magic = 1, BadMagic(1)),
            (|p| p.version = 2, UnsupportedVersion(2)),
            (|p| p.os_kind = 7, UnknownOsKind(7)),
            (|p| p.os_tcb_cur = Global::ABSENT, MissingGlobal("OSTCBCur")),
            (|p| p.tcb_prio = Field::ABSENT, MissingField("OSTCBPrio")),
            (
                |p| p.tcb_prio.size = 3,
                BadFieldSize {
                    field: "OSTCBPrio",
                    size: 3,
                },
            ),
            (
                |p| p.tcb_stat.offset = 120,
                FieldOutOfRange {
                    field: "OSTCBStat",
                    offset: 120,
                    size: 1,
                    struct_size: 120,
                },
            ),
            (
                |p| p.name_kind = NameKind::Inline as u32 + 5,
                UnknownEnum {
                    what: "name kind",
                    value: 7,
                },
            ),
            (|p| p.tcb_size = 0, BadStructSize(0)),
        ];
        for (mutate, want) in cases {
            let mut p = ok;
            mutate(&mut p);
            assert_eq!(OsProfile::from_bytes(&p.to_bytes()), Err(want));
        }
        assert_eq!(OsProfile::from_bytes(&ok.to_bytes()[..100]), Err(Truncated(100)));
        let mut linux = OsProfile::empty(OsKind::Linux);
        linux.linux_current = CurrentTask::SpEl0 as u32;
        linux.task_struct_size = 4096;
        linux.task_comm = Field { offset: 1800, size: 16 };
        linux.task_pid = Field { offset: 1200, size: 4 };
        assert_eq!(OsProfile::from_bytes(&linux.to_bytes()), Ok(linux));
        linux.task_pid = Field::ABSENT;
        assert_eq!(linux.validate(), Err(MissingField("pid")));
    }
}
