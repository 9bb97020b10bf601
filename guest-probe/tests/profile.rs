//! Profile extraction and symbol resolution against real ELF files compiled
//! by aarch64-linux-gnu-gcc: the offsets we read from DWARF must equal the
//! `offsetof` values the same compiler computes.

use std::path::{Path, PathBuf};
use std::process::Command;

use guest_probe::a64::{classify, Class, Refusal};
use guest_probe::abi::profile::{Field, NameKind, OsKind, OsProfile};
use guest_probe::abi::ProbeKind;
use guest_probe::profile::{extract_linux, extract_ucos, ExtractError};
use guest_probe::symbols::{SymbolError, SymbolTable};

mod common;
use common::{cc, constants, have_cc, TempDir};

const TCB_HEADER: &str = r#"
typedef unsigned char INT8U;
typedef unsigned short INT16U;
typedef unsigned int INT32U;
typedef INT8U OS_PRIO_T;
typedef volatile INT32U OS_CTR;
typedef unsigned long OS_STK;
struct os_event;
typedef struct os_tcb {
    OS_STK *OSTCBStkPtr;
    void *OSTCBExtPtr;
    INT32U OSTCBStkSize;
    INT16U OSTCBOpt;
    INT16U OSTCBId;
    struct os_tcb *OSTCBNext;
    struct os_event *OSTCBEventPtr;
    INT32U OSTCBDly;
    INT8U OSTCBStat;
    INT8U OSTCBStatPend;
    const OS_PRIO_T OSTCBPrio;
    INT8U OSTCBX;
    OS_CTR OSTCBCtxSwCtr;
#ifdef INLINE_NAME
    char OSTCBTaskName[24];
#else
    INT8U *OSTCBTaskName;
#endif
    INT32U OSTCBRegTbl[3];
} OS_TCB_BASE;
typedef OS_TCB_BASE OS_TCB;
"#;

const KERNEL_C: &str = r#"
#include "tcb.h"
OS_TCB OSTCBTbl[4];
OS_TCB *OSTCBCur;
OS_TCB *OSTCBHighRdy;
INT8U OSPrioCur;
INT8U OSPrioHighRdy;
volatile INT32U OSTime;
void OSTaskSwHook(void) { OSTime++; }
void OSCtxSw(void) { OSTaskSwHook(); OSTCBCur = OSTCBHighRdy; }
void OSIntCtxSw(void) { OSCtxSw(); }
void _start(void) { for (;;) OSIntCtxSw(); }
"#;

const OFFSETS_C: &str = r#"
#include <stddef.h>
#include "tcb.h"
#define OFF(m) const unsigned long off_##m = offsetof(OS_TCB, m); const unsigned long size_##m = sizeof(((OS_TCB *)0)->m);
OFF(OSTCBStkPtr) OFF(OSTCBPrio) OFF(OSTCBStat) OFF(OSTCBStatPend) OFF(OSTCBTaskName)
OFF(OSTCBId) OFF(OSTCBDly) OFF(OSTCBCtxSwCtr)
const unsigned long size_OS_TCB = sizeof(OS_TCB);
"#;

fn check_against_offsetof(p: &OsProfile, offsets: &std::collections::HashMap<String, u64>) {
    let fields: [(&str, Field); 8] = [
        ("OSTCBStkPtr", p.tcb_stk_ptr),
        ("OSTCBPrio", p.tcb_prio),
        ("OSTCBStat", p.tcb_stat),
        ("OSTCBStatPend", p.tcb_stat_pend),
        ("OSTCBTaskName", p.tcb_task_name),
        ("OSTCBId", p.tcb_id),
        ("OSTCBDly", p.tcb_dly),
        ("OSTCBCtxSwCtr", p.tcb_ctx_sw_ctr),
    ];
    for (name, f) in fields {
        assert_eq!(u64::from(f.offset), offsets[&format!("off_{name}")], "offset of {name}");
        assert_eq!(u64::from(f.size), offsets[&format!("size_{name}")], "size of {name}");
    }
    assert_eq!(u64::from(p.tcb_size), offsets["size_OS_TCB"]);
}

#[test]
fn ucos_profile_matches_offsetof_in_objects_and_linked_images() {
    if !have_cc() {
        return;
    }
    let dir = TempDir::new("ucos");
    dir.write("tcb.h", TCB_HEADER);
    let kernel = dir.write("kernel.c", KERNEL_C);
    let offsets_c = dir.write("offsets.c", OFFSETS_C);
    for (variant, defs) in [("pointer", vec![]), ("inline", vec!["-DINLINE_NAME"])] {
        let off_obj = dir.0.join(format!("offsets-{variant}.o"));
        let mut args = vec!["-c", "-O2"];
        args.extend(&defs);
        cc(&args, &[&offsets_c], &off_obj);
        let offsets = constants(&std::fs::read(&off_obj).unwrap());
        // A relocatable object (-c) at -O0 and -O2, and a linked image.
        for opt in ["-O0", "-O2"] {
            let obj = dir.0.join(format!("kernel-{variant}{opt}.o"));
            let mut args = vec!["-g", "-c", opt];
            args.extend(&defs);
            cc(&args, &[&kernel], &obj);
            let got = extract_ucos(&std::fs::read(&obj).unwrap()).unwrap();
            check_against_offsetof(&got.profile, &offsets);
            let kind = if variant == "inline" {
                NameKind::Inline
            } else {
                NameKind::Pointer
            };
            assert_eq!(got.profile.name_kind(), Some(kind));
            assert_eq!(got.profile.kind(), Some(OsKind::UcosII));
            assert_eq!(
                got.probe_sites.iter().map(|s| s.symbol.as_str()).collect::<Vec<_>>(),
                ["OSCtxSw", "OSIntCtxSw", "OSTaskSwHook"]
            );
        }
        let elf = dir.0.join(format!("kernel-{variant}.elf"));
        let mut args = vec!["-g", "-O2", "-nostdlib", "-static", "-Wl,-Ttext=0x40100000"];
        args.extend(&defs);
        cc(&args, &[&kernel], &elf);
        let bytes = std::fs::read(&elf).unwrap();
        let got = extract_ucos(&bytes).unwrap();
        check_against_offsetof(&got.profile, &offsets);
        let syms = SymbolTable::from_elf(&bytes).unwrap();
        for (name, g) in [
            ("OSTCBCur", got.profile.os_tcb_cur),
            ("OSTCBHighRdy", got.profile.os_tcb_high_rdy),
            ("OSTime", got.profile.os_time),
        ] {
            assert_eq!(syms.lookup(name)[0].addr, g.va, "{name}");
        }
        assert_eq!(
            (
                got.profile.os_tcb_cur.size,
                got.profile.os_prio_cur.size,
                got.profile.os_time.size
            ),
            (8, 1, 4)
        );
        for site in &got.probe_sites {
            assert_eq!(site.kind, ProbeKind::ContextSwitch);
            let r = syms.resolve(&site.symbol).unwrap();
            assert_eq!(r.addr, site.va);
            let class = classify(r.insn.unwrap());
            assert!(
                !matches!(class, Class::Refused(Refusal::Unallocated | Refusal::Unpredictable)),
                "{}: {class:?}",
                site.symbol
            );
        }
        // The blob round-trips and validates like the hypervisor would.
        assert_eq!(OsProfile::from_bytes(&got.profile.to_bytes()), Ok(got.profile));
        let json = serde_json::to_string(&got).unwrap();
        assert!(json.contains("\"OSCtxSw\""), "{json}");
    }
}

#[test]
fn missing_required_and_optional_members() {
    if !have_cc() {
        return;
    }
    let dir = TempDir::new("missing");
    let minimal = dir.write(
        "minimal.c",
        "typedef struct os_tcb { unsigned long *OSTCBStkPtr; unsigned char OSTCBStat; unsigned char OSTCBPrio; } OS_TCB;\n\
         OS_TCB t; OS_TCB *OSTCBCur; OS_TCB *OSTCBHighRdy;\n",
    );
    let obj = dir.0.join("minimal.o");
    cc(&["-g", "-c"], &[&minimal], &obj);
    let got = extract_ucos(&std::fs::read(&obj).unwrap()).unwrap();
    assert_eq!(got.profile.tcb_task_name, Field::ABSENT);
    assert_eq!(got.profile.tcb_ctx_sw_ctr, Field::ABSENT);
    assert_eq!(got.profile.name_kind(), Some(NameKind::None));
    assert!(!got.profile.os_time.present());
    assert!(got.probe_sites.is_empty());

    let no_prio = dir.write(
        "noprio.c",
        "struct os_tcb { unsigned long *OSTCBStkPtr; unsigned char OSTCBStat; }; struct os_tcb t;\n\
         struct os_tcb *OSTCBCur; struct os_tcb *OSTCBHighRdy;\n",
    );
    let obj = dir.0.join("noprio.o");
    cc(&["-g", "-c"], &[&no_prio], &obj);
    let err = extract_ucos(&std::fs::read(&obj).unwrap()).unwrap_err();
    assert_eq!(
        err,
        ExtractError::MissingMember {
            ty: "OS_TCB",
            member: "OSTCBPrio"
        }
    );
    assert_eq!(err.to_string(), "OS_TCB has no member OSTCBPrio, which is required");

    let no_cur = dir.write(
        "nocur.c",
        "typedef struct os_tcb { unsigned long *OSTCBStkPtr; unsigned char OSTCBStat, OSTCBPrio; } OS_TCB; OS_TCB t;\n",
    );
    let obj = dir.0.join("nocur.o");
    cc(&["-g", "-c"], &[&no_cur], &obj);
    assert_eq!(
        extract_ucos(&std::fs::read(&obj).unwrap()).unwrap_err(),
        ExtractError::MissingSymbol("OSTCBCur")
    );

    let obj = dir.0.join("nodebug.o");
    cc(&["-c"], &[&minimal], &obj);
    assert_eq!(
        extract_ucos(&std::fs::read(&obj).unwrap()).unwrap_err(),
        ExtractError::NoDebugInfo
    );

    let decl_only = dir.write("decl.c", "struct os_tcb; struct os_tcb *OSTCBCur, *OSTCBHighRdy;\n");
    let obj = dir.0.join("decl.o");
    cc(&["-g", "-c"], &[&decl_only], &obj);
    assert_eq!(
        extract_ucos(&std::fs::read(&obj).unwrap()).unwrap_err(),
        ExtractError::MissingType("OS_TCB (struct os_tcb)")
    );

    assert!(matches!(extract_ucos(b"not an elf"), Err(ExtractError::Elf(_))));
}

#[test]
fn linux_task_struct_offsets() {
    if !have_cc() {
        return;
    }
    let dir = TempDir::new("linux");
    let src = dir.write(
        "sched.c",
        r#"
        #include <stddef.h>
        typedef int pid_t;
        struct list_head { struct list_head *next, *prev; };
        struct task_struct {
            unsigned int __state;
            void *stack;
            struct { int prio; int static_prio; };
            struct list_head tasks;
            union { long pad; struct { pid_t pid; pid_t tgid; }; };
            char comm[16];
        } __attribute__((aligned(64)));
        struct task_struct init_task;
        struct task_struct *task_struct_decl_only(void);
        const unsigned long off_comm = offsetof(struct task_struct, comm);
        const unsigned long off_pid = offsetof(struct task_struct, pid);
        const unsigned long off_prio = offsetof(struct task_struct, prio);
        const unsigned long size_task = sizeof(struct task_struct);
        "#,
    );
    let obj = dir.0.join("sched.o");
    cc(&["-g", "-c", "-O2"], &[&src], &obj);
    let bytes = std::fs::read(&obj).unwrap();
    let c = constants(&bytes);
    let p = extract_linux(&bytes).unwrap();
    assert_eq!(u64::from(p.task_comm.offset), c["off_comm"]);
    assert_eq!(p.task_comm.size, 16);
    assert_eq!(u64::from(p.task_pid.offset), c["off_pid"]);
    assert_eq!(p.task_pid.size, 4);
    assert_eq!(u64::from(p.task_prio.offset), c["off_prio"]);
    assert_eq!(u64::from(p.task_struct_size), c["size_task"]);
    assert_eq!(OsProfile::from_bytes(&p.to_bytes()), Ok(p));
}

#[test]
fn symbol_resolution() {
    if !have_cc() {
        return;
    }
    let dir = TempDir::new("syms");
    let a = dir.write("a.c", "static int helper(int x) { return x * 3 + 1; }\nint data_word = 5;\nint entry(int x) { return helper(x) + helper(x + 1); }\nvoid _start(void) { for (;;) entry(data_word); }\n");
    let b = dir.write(
        "b.c",
        "static int helper(int x) { return x * 7 - 2; }\nint other(int x) { return helper(x) * helper(x - 1); }\n",
    );
    let elf = dir.0.join("syms.elf");
    cc(
        &["-O1", "-fno-inline", "-nostdlib", "-static", "-Wl,-Ttext=0x40100000"],
        &[&a, &b],
        &elf,
    );
    let t = SymbolTable::from_elf(&std::fs::read(&elf).unwrap()).unwrap();
    let entry = t.lookup("entry")[0].clone();
    assert!(entry.is_function && entry.executable && entry.size >= 8);
    let r = t.resolve("entry").unwrap();
    assert_eq!((r.addr, r.symbol.clone()), (entry.addr, Some(("entry".to_string(), 0))));
    assert!(r.insn.is_some());
    assert_eq!(t.resolve("entry+4").unwrap().addr, entry.addr + 4);
    assert_eq!(t.resolve("entry + 0x4").unwrap().addr, entry.addr + 4);
    let raw = t.resolve(&format!("{:#x}", entry.addr + 4)).unwrap();
    assert_eq!(raw.symbol, Some(("entry".to_string(), 4)));
    assert_eq!(t.resolve("entry+2"), Err(SymbolError::Misaligned(entry.addr + 2)));
    assert_eq!(
        t.resolve(&format!("entry+{}", entry.size)),
        Err(SymbolError::OutsideSymbol {
            name: "entry".into(),
            offset: entry.size,
            size: entry.size
        })
    );
    assert_eq!(t.resolve("nope"), Err(SymbolError::NotFound("nope".into())));
    let helpers: Vec<u64> = t.lookup("helper").iter().map(|s| s.addr).collect();
    assert_eq!(helpers.len(), 2);
    let err = t.resolve("helper").unwrap_err();
    assert_eq!(
        err,
        SymbolError::Ambiguous {
            name: "helper".into(),
            addrs: helpers
        }
    );
    assert!(err.to_string().contains("ambiguous"), "{err}");
    let data = t.lookup("data_word")[0].addr;
    assert_eq!(
        t.resolve("data_word"),
        Err(SymbolError::NotExecutable {
            addr: data,
            symbol: Some("data_word".into())
        })
    );
    assert!(matches!(
        t.resolve(&format!("{data:#x}")),
        Err(SymbolError::NotExecutable { .. })
    ));
    assert_eq!(
        t.resolve("0x10"),
        Err(SymbolError::NotExecutable {
            addr: 0x10,
            symbol: None
        })
    );
    for bad in ["", "entry+", "entry+zz", "0xZZ", "two words"] {
        assert_eq!(
            t.resolve(bad),
            Err(SymbolError::BadSpec(bad.trim().to_string())),
            "{bad:?}"
        );
    }
    assert!(matches!(
        SymbolTable::from_elf(&[0x7f, b'E', b'L', b'F']),
        Err(SymbolError::Elf(_))
    ));
}

/// Builds the real RTOS (guests/ucos-ii) if its Makefile exists, and checks
/// the extracted profile against offsetof values compiled from its own
/// header, and that every default probe site is classified.
#[test]
fn real_rtos_elf() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/ucos-ii");
    if !root.join("Makefile").exists() {
        eprintln!("SKIP: guests/ucos-ii/Makefile not present yet");
        return;
    }
    if !have_cc() {
        return;
    }
    let dir = TempDir::new("rtos");
    let out = Command::new("make")
        .arg("-C")
        .arg(&root)
        .arg(format!("BUILD={}", dir.0.display()))
        .arg("-j2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the RTOS failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(dir.0.join("ucos-ii.elf")).unwrap();
    let got = extract_ucos(&bytes).unwrap();
    let probe = dir.write(
        "probe.c",
        "#include <stddef.h>\n#include \"ucos_ii.h\"\n\
         #define OFF(m) const unsigned long off_##m = offsetof(OS_TCB, m); const unsigned long size_##m = sizeof(((OS_TCB *)0)->m);\n\
         OFF(OSTCBStkPtr) OFF(OSTCBPrio) OFF(OSTCBStat) OFF(OSTCBStatPend) OFF(OSTCBTaskName)\n\
         OFF(OSTCBId) OFF(OSTCBDly) OFF(OSTCBCtxSwCtr)\nconst unsigned long size_OS_TCB = sizeof(OS_TCB);\n",
    );
    let obj = dir.0.join("probe.o");
    let inc = |p: &str| format!("-I{}", root.join(p).display());
    let (i1, i2, i3, i4) = (
        inc("kernel"),
        inc("port/aarch64"),
        inc("apps/include"),
        inc("bsp/qemu-virt"),
    );
    cc(&["-c", "-O2", "-ffreestanding", &i1, &i2, &i3, &i4], &[&probe], &obj);
    check_against_offsetof(&got.profile, &constants(&std::fs::read(&obj).unwrap()));
    assert!(
        got.profile.os_tcb_cur.va >= 0xFFFF_0000_4010_0000,
        "{:#x}",
        got.profile.os_tcb_cur.va
    );
    let syms = SymbolTable::from_elf(&bytes).unwrap();
    // Regression: an address outside the image named an unrelated symbol
    // ("0xdeadbeef is not in an executable section (_start_pa is data)").
    assert_eq!(
        syms.resolve("0xdeadbeef").unwrap_err(),
        SymbolError::NotExecutable {
            addr: 0xdead_beef,
            symbol: None
        }
    );
    assert!(!got.probe_sites.is_empty());
    for site in &got.probe_sites {
        let r = syms.resolve(&site.symbol).unwrap();
        let class = classify(r.insn.unwrap());
        assert!(
            !matches!(class, Class::Refused(Refusal::Unallocated | Refusal::Unpredictable)),
            "{}: {class:?}",
            site.symbol
        );
        eprintln!(
            "probe site {} at {:#x}: {:#010x} {class:?}",
            site.symbol,
            r.addr,
            r.insn.unwrap()
        );
    }
}

/// The guest's real vmlinux (built by the project's kernel script), if
/// present: `HV_TRACE_VMLINUX`, else `~/.cache/hv-trace/linux/build/vmlinux`.
fn vmlinux_path() -> Option<PathBuf> {
    let p = match std::env::var_os("HV_TRACE_VMLINUX") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/hv-trace/linux/build/vmlinux"),
    };
    p.exists().then_some(p)
}

/// task_struct offsets from the vmlinux DWARF equal the ones the kernel's
/// own compiler run wrote into asm-offsets.h (where that file exists), and
/// extraction takes well under a second.
#[test]
fn real_vmlinux() {
    let Some(path) = vmlinux_path() else {
        eprintln!("SKIP: no vmlinux (set HV_TRACE_VMLINUX or build the guest kernel)");
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let t = std::time::Instant::now();
    let p = extract_linux(&bytes).unwrap();
    eprintln!(
        "vmlinux profile in {:?}: comm {:?} pid {:?} size {}",
        t.elapsed(),
        p.task_comm,
        p.task_pid,
        p.task_struct_size
    );
    assert_eq!((p.task_comm.size, p.task_pid.size), (16, 4));
    let asm_offsets = path.parent().unwrap().join("include/generated/asm-offsets.h");
    let Ok(text) = std::fs::read_to_string(&asm_offsets) else {
        eprintln!("SKIP (partly): no {}", asm_offsets.display());
        return;
    };
    let define = |name: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            l.strip_prefix(&format!("#define {name} "))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
    };
    let (_, task) = guest_probe::profile::struct_layout(&bytes, "task_struct").unwrap();
    let mut checked = 0;
    for (define_name, member) in [("TSK_STACK", "stack"), ("TSK_ACTIVE_MM", "active_mm")] {
        if let Some(v) = define(define_name) {
            assert_eq!(u64::from(task[member].offset), v, "{member}");
            checked += 1;
        }
    }
    if let Some(v) = define("THREAD_CPU_CONTEXT") {
        let (_, thread) = guest_probe::profile::struct_layout(&bytes, "thread_struct").unwrap();
        assert_eq!(u64::from(task["thread"].offset + thread["cpu_context"].offset), v);
        checked += 1;
    }
    assert!(checked > 0, "asm-offsets.h has none of the expected defines");
}
