//! GICv3 encodings the hypervisor needs: list registers and SGI generation.

/// A list register value making `vintid` pending in the guest. With a
/// physical INTID the guest's EOI also deactivates the physical interrupt
/// (HW = 1); without one the interrupt is purely virtual.
pub fn list_register(vintid: u32, pintid: Option<u32>, priority: u8) -> u64 {
    let pending = 1u64 << 62;
    let group1 = 1u64 << 60;
    let hw = match pintid {
        Some(p) => (1u64 << 61) | (u64::from(p & 0x1fff) << 32),
        None => 0,
    };
    pending | group1 | hw | (u64::from(priority) << 48) | u64::from(vintid)
}

/// State field of a list register: 0 = free.
pub fn lr_state(lr: u64) -> u8 {
    (lr >> 62) as u8
}

pub fn lr_vintid(lr: u64) -> u32 {
    lr as u32
}

/// ICC_SGI1R_EL1 value sending SGI `intid` to core `aff0` of cluster 0.
pub fn sgi1r(intid: u32, aff0: u8) -> u64 {
    (u64::from(intid & 0xf) << 24) | (1u64 << (aff0 & 0xf))
}

/// The cores (Aff0, cluster 0 only) and INTID an ICC_SGI1R_EL1 write names.
/// `all_others`: IRM = 1.
pub fn decode_sgi1r(value: u64) -> (u32, u16, bool) {
    let intid = ((value >> 24) & 0xf) as u32;
    let targets = (value & 0xffff) as u16;
    let irm = value & (1 << 40) != 0;
    let cluster = (value >> 16) & 0xff | ((value >> 32) & 0xff) << 8 | ((value >> 48) & 0xff) << 16;
    let targets = if cluster == 0 { targets } else { 0 };
    (intid, targets, irm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_register_fields() {
        let lr = list_register(27, Some(27), 0xa0);
        assert_eq!(lr_state(lr), 1);
        assert_eq!(lr_vintid(lr), 27);
        assert_eq!((lr >> 61) & 1, 1);
        assert_eq!((lr >> 32) & 0x1fff, 27);
        assert_eq!((lr >> 48) & 0xff, 0xa0);
        let v = list_register(112, None, 0x80);
        assert_eq!((v >> 61) & 1, 0);
        assert_eq!((v >> 60) & 1, 1, "group 1");
    }

    #[test]
    fn sgi_encoding_round_trips() {
        let v = sgi1r(8, 0);
        assert_eq!(decode_sgi1r(v), (8, 1, false));
        assert_eq!(decode_sgi1r(sgi1r(3, 2)), (3, 4, false));
        // Another cluster: no core of ours.
        assert_eq!(decode_sgi1r((1 << 16) | (3 << 24) | 1).1, 0);
    }
}
