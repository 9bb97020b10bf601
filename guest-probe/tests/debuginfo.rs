//! Argument specs compiled against small programs built by
//! aarch64-linux-gnu-gcc (linked, so addresses are absolute): the offsets,
//! types and registers must be the ones the same compiler chose, checked
//! against `offsetof` compiled into data; and against the cached RTOS ELF
//! and vmlinux when they are there.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use guest_probe::abi::fetch::{Base, FetchArg, TypeKind, ValueType};
use guest_probe::debuginfo::{DebugInfo, DebugInfoError, Location, VarKind};
use object::{Object, ObjectSymbol};

mod common;
use common::{cc, constants, have_cc, TempDir};

/// A symbol's address in a linked image.
fn symbol(elf: &[u8], name: &str) -> u64 {
    let f = object::File::parse(elf).unwrap();
    let found = f.symbols().find(|s| s.name() == Ok(name));
    found.unwrap_or_else(|| panic!("no symbol {name}")).address()
}

const HEADER: &str = r#"
typedef unsigned char INT8U;
typedef signed char INT8S;
typedef unsigned short INT16U;
typedef signed short INT16S;
typedef unsigned int INT32U;
typedef struct os_event {
    INT8U OSEventType;
    void *OSEventPtr;
    INT16U OSEventCnt;
    INT8U OSEventGrp;
    INT8U OSEventTbl[8];
    INT8U *OSEventName;
} OS_EVENT;
typedef struct os_tcb {
    void *OSTCBStkPtr;
    struct os_tcb *OSTCBNext;
    OS_EVENT *OSTCBEventPtr;
    volatile INT32U OSTCBDly;
    const INT8U OSTCBPrio;
    char OSTCBTaskName[16];
    INT8U *OSTCBNamePtr;
    union {
        INT32U OSTCBFlags;
        struct { INT16S OSTCBLo; INT16U OSTCBHi; };
    };
    unsigned OSTCBBits : 3;
    unsigned long OSTCBAVeryLongMemberName;
    void (*OSTCBHook)(void);
} OS_TCB;
enum os_state { OS_READY = 0, OS_WAITING = -1 };
struct hidden;
"#;

const KERNEL_C: &str = r#"
#include "os.h"
volatile INT32U OSTime;
OS_TCB *OSTCBCur;
OS_TCB OSTCBIdle;
INT8S OSIntNesting;
enum os_state OSState;
extern INT16S OSElsewhere;      /* defined in other.c */
struct hidden *OSHidden;        /* its struct is defined in other.c only */
void sink(long v);

__attribute__((noinline)) INT8U OSSemPost(OS_EVENT *pevent)
{
    if (pevent->OSEventCnt < 65535u) {
        pevent->OSEventCnt++;
        return 0;
    }
    return 50;
}

__attribute__((noinline)) void OSSemPend(OS_EVENT *pevent, INT32U timeout, INT8U *perr)
{
    pevent->OSEventGrp = (INT8U)timeout;
    *perr = 0;
}

__attribute__((noinline)) void OSTaskNameSet(INT8U prio, INT8U *pname, INT8U *perr)
{
    OSTCBIdle.OSTCBNamePtr = pname;
    *perr = prio;
}

/* `first` dies after the first call: it is unavailable later on at -O2. */
__attribute__((noinline)) long OSLate(long first, long second)
{
    sink(first);
    sink(0);
    sink(0);
    return second;
}

void _start(void)
{
    static OS_EVENT ev;
    INT8U err;
    for (;;) {
        OSSemPost(&ev);
        OSSemPend(&ev, OSTime, &err);
        OSTaskNameSet(3, (INT8U *)"idle", &err);
        sink(OSLate(OSElsewhere + OSIntNesting + OSState, (long)OSHidden + (long)OSTCBCur));
    }
}
"#;

const OTHER_C: &str = r#"
#include "os.h"
struct hidden { long pad; int secret; } OSHiddenStore;
INT16S OSElsewhere = -3;
volatile long sunk;
__attribute__((noinline)) void sink(long v) { sunk = v; }
"#;

const OFFSETS_C: &str = r#"
#include <stddef.h>
#include "os.h"
#define OFF(t, m) const unsigned long off_##m = offsetof(t, m);
OFF(OS_EVENT, OSEventCnt) OFF(OS_EVENT, OSEventName)
OFF(OS_TCB, OSTCBNext) OFF(OS_TCB, OSTCBEventPtr) OFF(OS_TCB, OSTCBPrio) OFF(OS_TCB, OSTCBTaskName)
OFF(OS_TCB, OSTCBNamePtr) OFF(OS_TCB, OSTCBLo) OFF(OS_TCB, OSTCBHi) OFF(OS_TCB, OSTCBAVeryLongMemberName)
OFF(OS_TCB, OSTCBHook)
struct hidden { long pad; int secret; };
OFF(struct hidden, secret)
"#;

/// A linked test program at one optimisation level, its debug info and `offsetof` values.
struct Program {
    _dir: TempDir,
    elf: Vec<u8>,
    di: DebugInfo,
    off: HashMap<String, u64>,
}

impl Program {
    fn build(opt: &str) -> Program {
        let dir = TempDir::new(&format!("prog{opt}"));
        dir.write("os.h", HEADER);
        let kernel = dir.write("kernel.c", KERNEL_C);
        let other = dir.write("other.c", OTHER_C);
        let offsets = dir.write("offsets.c", OFFSETS_C);
        let obj = dir.0.join("offsets.o");
        cc(&["-c", "-O2"], &[&offsets], &obj);
        let off = constants(&std::fs::read(&obj).unwrap());
        let exe = dir.0.join("prog.elf");
        cc(
            &["-g", opt, "-nostdlib", "-static", "-Wl,-Ttext=0x40100000"],
            &[&kernel, &other],
            &exe,
        );
        let elf = std::fs::read(&exe).unwrap();
        let di = DebugInfo::load(&elf).unwrap();
        Program {
            _dir: dir,
            elf,
            di,
            off,
        }
    }

    fn entry(&self, function: &str) -> u64 {
        let found = self.di.functions(Some(function));
        assert_eq!(found.len(), 1, "{function}: {found:?}");
        assert_eq!(found[0].entry, symbol(&self.elf, function), "{function}'s entry");
        found[0].entry
    }

    fn off(&self, member: &str) -> i32 {
        self.off[&format!("off_{member}")] as i32
    }

    fn compile(&self, at: &str, spec: &str) -> FetchArg {
        self.di
            .compile(self.entry(at), spec, 0)
            .unwrap_or_else(|e| panic!("{at} {spec}: {e}"))
    }

    fn error(&self, at: &str, spec: &str) -> DebugInfoError {
        match self.di.compile(self.entry(at), spec, 0) {
            Ok(a) => panic!("{at} {spec}: compiled to {a}"),
            Err(e) => e,
        }
    }
}

fn ty(s: &str) -> ValueType {
    ValueType::parse(s).unwrap()
}

/// Checks base, loads and type of a compiled argument.
fn check(arg: &FetchArg, name: &str, base: Base, loads: &[i32], vt: &str) {
    let n = usize::from(arg.n_derefs);
    assert_eq!(
        (arg.name(), arg.base, &arg.derefs[..n], arg.ty),
        (name, base, loads, ty(vt)),
        "{arg}"
    );
    // What the hypervisor gets parses back the same way.
    let again = FetchArg::parse(&arg.to_string(), 0).unwrap();
    assert_eq!((again.ty, again.n_derefs), (arg.ty, arg.n_derefs), "{arg}");
}

#[test]
fn specs_compile_to_the_layout_and_registers_gcc_chose() {
    if !have_cc() {
        return;
    }
    for opt in ["-O0", "-O2"] {
        let p = Program::build(opt);
        let ostime = symbol(&p.elf, "OSTime");
        let cur = symbol(&p.elf, "OSTCBCur");
        let idle = symbol(&p.elf, "OSTCBIdle");

        // Parameters at the entry, in the AAPCS64 registers.
        let a = p.compile("OSSemPost", "pevent->OSEventCnt");
        check(&a, "OSEventCnt", Base::Reg(0), &[p.off("OSEventCnt")], "u16");
        assert_eq!(a.to_string(), format!("OSEventCnt=+{}(%x0):u16", p.off("OSEventCnt")));
        check(&p.compile("OSSemPend", "timeout"), "timeout", Base::Reg(1), &[], "u32");
        check(&p.compile("OSSemPend", "perr"), "perr", Base::Reg(2), &[], "x64");
        check(&p.compile("OSTaskNameSet", "prio"), "prio", Base::Reg(0), &[], "u8");
        // A char pointer in a register: the string at it.
        check(
            &p.compile("OSTaskNameSet", "pname:string"),
            "pname",
            Base::Reg(1),
            &[0],
            "string",
        );
        // Through a pointer in memory: the name pointer is loaded, then the string.
        check(
            &p.compile("OSSemPost", "pevent->OSEventName:string"),
            "OSEventName",
            Base::Reg(0),
            &[p.off("OSEventName"), 0],
            "string",
        );

        // Globals: @ADDR with the variable's type.
        let a = p.compile("OSSemPost", "OSTime");
        check(&a, "OSTime", Base::Imm(ostime), &[0], "u32");
        assert_eq!(a.to_string(), format!("OSTime=@{ostime:#x}:u32"));
        check(
            &p.compile("OSSemPost", "OSIntNesting"),
            "OSIntNesting",
            Base::Imm(symbol(&p.elf, "OSIntNesting")),
            &[0],
            "s8",
        );
        check(
            &p.compile("OSSemPost", "OSState"),
            "OSState",
            Base::Imm(symbol(&p.elf, "OSState")),
            &[0],
            "s32",
        );
        check(
            &p.compile("OSSemPost", "OSTCBCur"),
            "OSTCBCur",
            Base::Imm(cur),
            &[0],
            "x64",
        );
        // Declared in this unit, defined in another.
        check(
            &p.compile("OSSemPost", "OSElsewhere"),
            "OSElsewhere",
            Base::Imm(symbol(&p.elf, "OSElsewhere")),
            &[0],
            "s16",
        );
        // A pointer to a struct this unit only declares.
        check(
            &p.compile("OSSemPost", "OSHidden->secret"),
            "secret",
            Base::Imm(symbol(&p.elf, "OSHidden")),
            &[0, p.off("secret")],
            "s32",
        );

        // `->` through a pointer global, then through a member pointer.
        check(
            &p.compile("OSSemPost", "OSTCBCur->OSTCBPrio"),
            "OSTCBPrio",
            Base::Imm(cur),
            &[0, p.off("OSTCBPrio")],
            "u8",
        );
        check(
            &p.compile("OSSemPost", "OSTCBCur->OSTCBEventPtr->OSEventCnt"),
            "OSEventCnt",
            Base::Imm(cur),
            &[0, p.off("OSTCBEventPtr"), p.off("OSEventCnt")],
            "u16",
        );
        // `.` on a global struct folds into the one load.
        check(
            &p.compile("OSSemPost", "OSTCBIdle.OSTCBPrio"),
            "OSTCBPrio",
            Base::Imm(idle),
            &[p.off("OSTCBPrio")],
            "u8",
        );
        // Anonymous union and struct members are looked through.
        check(
            &p.compile("OSSemPost", "OSTCBCur->OSTCBLo"),
            "OSTCBLo",
            Base::Imm(cur),
            &[0, p.off("OSTCBLo")],
            "s16",
        );
        check(
            &p.compile("OSSemPost", "OSTCBIdle.OSTCBHi"),
            "OSTCBHi",
            Base::Imm(idle),
            &[p.off("OSTCBHi")],
            "u16",
        );
        // A char array is read in place, a char pointer is loaded first.
        check(
            &p.compile("OSSemPost", "OSTCBIdle.OSTCBTaskName:string"),
            "OSTCBTaskName",
            Base::Imm(idle),
            &[p.off("OSTCBTaskName")],
            "string",
        );
        check(
            &p.compile("OSSemPost", "OSTCBCur->OSTCBTaskName:string"),
            "OSTCBTaskName",
            Base::Imm(cur),
            &[0, p.off("OSTCBTaskName")],
            "string",
        );
        check(
            &p.compile("OSSemPost", "OSTCBCur->OSTCBNamePtr:string"),
            "OSTCBNamePtr",
            Base::Imm(cur),
            &[0, p.off("OSTCBNamePtr"), 0],
            "string",
        );
        // A function pointer is a symbol; a long name is cut; NAME= and :TYPE override.
        check(
            &p.compile("OSSemPost", "OSTCBCur->OSTCBHook"),
            "OSTCBHook",
            Base::Imm(cur),
            &[0, p.off("OSTCBHook")],
            "symbol",
        );
        check(
            &p.compile("OSSemPost", "OSTCBCur->OSTCBAVeryLongMemberName"),
            "OSTCBAVeryLong",
            Base::Imm(cur),
            &[0, p.off("OSTCBAVeryLongMemberName")],
            "u64",
        );
        check(
            &p.compile("OSSemPost", "cnt=pevent->OSEventCnt:x32"),
            "cnt",
            Base::Reg(0),
            &[p.off("OSEventCnt")],
            "x32",
        );
        // Four loads is the limit.
        check(
            &p.compile("OSSemPost", "OSTCBCur->OSTCBNext->OSTCBNext->OSTCBPrio"),
            "OSTCBPrio",
            Base::Imm(cur),
            &[0, p.off("OSTCBNext"), p.off("OSTCBNext"), p.off("OSTCBPrio")],
            "u8",
        );

        // Raw kprobe text passes through; @SYMBOL is resolved first.
        check(
            &p.compile("OSSemPost", "+8(%x0):u16"),
            "arg1",
            Base::Reg(0),
            &[8],
            "u16",
        );
        check(
            &p.compile("OSSemPost", "t=@OSTime:u32"),
            "t",
            Base::Imm(ostime),
            &[0],
            "u32",
        );
        check(
            &p.compile("OSSemPost", "@OSTime+4:u8"),
            "arg1",
            Base::Imm(ostime + 4),
            &[0],
            "u8",
        );
        check(
            &p.compile("OSSemPost", "p=+8(@OSTCBCur):x64"),
            "p",
            Base::Imm(cur),
            &[0, 8],
            "x64",
        );
        check(&p.compile("OSSemPost", "c=$comm"), "c", Base::Comm, &[], "string");
    }
}

#[test]
fn mistakes_are_errors_that_say_what_exists() {
    if !have_cc() {
        return;
    }
    let p = Program::build("-O2");
    let msg = |spec: &str| p.error("OSSemPost", spec).to_string();

    let e = p.error("OSSemPost", "OSTCBCur->OSTCBNope");
    assert!(
        matches!(&e, DebugInfoError::NoMember { member, members, .. }
        if member == "OSTCBNope" && members.iter().any(|m| m == "OSTCBPrio") && members.iter().any(|m| m == "OSTCBLo")),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("OS_TCB has no member 'OSTCBNope'; its members: OSTCBStkPtr, OSTCBNext"),
        "{e}"
    );

    let e = msg("OSTCBIdle");
    assert!(
        e.contains("'OSTCBIdle' is a struct (OS_TCB): name a member with -> or ."),
        "{e}"
    );
    let e = msg("pevent->OSEventTbl");
    assert!(e.contains("is an array") || e.contains("an array"), "{e}");

    let e = p.error("OSSemPost", "nope");
    assert!(
        matches!(&e, DebugInfoError::UnknownName { name, known, .. } if name == "nope" && known == &["pevent".to_string()]),
        "{e:?}"
    );
    assert!(e.to_string().contains("in scope there: pevent"), "{e}");

    assert!(msg("OSTCBCur.OSTCBPrio").contains("write OSTCBCur->OSTCBPrio"));
    assert!(msg("OSTCBIdle->OSTCBPrio").contains("write OSTCBIdle.OSTCBPrio"));
    assert!(msg("OSTCBCur->OSTCBPrio:string").contains("string"));
    assert!(msg("OSTCBCur->OSTCBBits").contains("bit-field"));
    assert!(msg("OSTime->x").contains("'->' needs a pointer to a struct"));
    let e = p.error("OSSemPost", "OSTCBCur->OSTCBNext->OSTCBNext->OSTCBNext->OSTCBPrio");
    assert!(matches!(e, DebugInfoError::TooDeep { loads: 5, .. }), "{e}");
    assert!(e.to_string().contains("more than the 4"), "{e}");
    assert!(msg("1bad=OSTime").contains("not a valid name"));
    assert!(msg("toolongname_xyz=OSTime").contains("not a valid name"));
    assert!(msg("OSTime:u12").contains("unknown type 'u12'"));
    assert!(msg("pevent->").contains("a member name must follow"));
    assert!(matches!(
        p.error("OSSemPost", "@NoSuchSymbol:u32"),
        DebugInfoError::NoSymbol { .. }
    ));
    assert!(matches!(p.error("OSSemPost", "%x99"), DebugInfoError::Fetch(_)));

    // Outside every function: globals still compile, vars_at says why not.
    let nowhere = symbol(&p.elf, "OSTime");
    assert!(matches!(p.di.vars_at(nowhere), Err(DebugInfoError::NoFunction { addr }) if addr == nowhere));
    assert!(p.di.compile(nowhere, "OSTime", 0).is_ok());
}

#[test]
fn a_parameter_is_unavailable_once_its_register_is_reused() {
    if !have_cc() {
        return;
    }
    let p = Program::build("-O2");
    let f = p.di.functions(Some("OSLate"))[0].clone();
    let at_entry = p.di.vars_at(f.entry).unwrap();
    assert_eq!(at_entry[0].name, "first");
    assert_eq!(at_entry[0].location, Location::Register(0));
    // Somewhere after the first call, `first` is gone.
    let late = (f.entry..f.entry + f.size)
        .step_by(4)
        .find(|&a| {
            let vars = p.di.vars_at(a).unwrap();
            matches!(
                vars.iter().find(|v| v.name == "first").map(|v| v.location),
                Some(Location::Unavailable(_))
            )
        })
        .expect("`first` is unavailable somewhere in OSLate");
    let e = p.di.compile(late, "first", 0).unwrap_err();
    let site = format!("OSLate+{:#x}", late - f.entry);
    assert!(
        e.to_string().contains(&format!("'first' is not available at {site} ("))
            && e.to_string().ends_with("probe the function entry or use %xN"),
        "{e}"
    );
    // `second` was moved to a callee-saved register and is still there.
    let second = p.di.compile(late, "second", 0).unwrap();
    assert!(matches!(second.base, Base::Reg(19..=28)), "{second}");
}

#[test]
fn vars_at_lists_parameters_with_c_types_and_places() {
    if !have_cc() {
        return;
    }
    let p = Program::build("-O0");
    let entry = p.entry("OSSemPend");
    let vars = p.di.vars_at(entry).unwrap();
    let shown: Vec<(&str, &str, VarKind)> = vars
        .iter()
        .map(|v| (v.name.as_str(), v.type_name.as_str(), v.kind))
        .collect();
    assert_eq!(
        shown,
        [
            ("pevent", "OS_EVENT *", VarKind::Parameter),
            ("timeout", "INT32U", VarKind::Parameter),
            ("perr", "INT8U *", VarKind::Parameter)
        ]
    );
    // At -O0 the DWARF describes the stack slots the prologue fills: at the
    // entry the AAPCS64 registers are what holds them.
    assert_eq!(vars[1].location, Location::Aapcs(1));
    assert_eq!(vars[1].location.to_string(), "x1 at entry (AAPCS64)");
    assert_eq!(vars[0].to_string(), "OS_EVENT *pevent (x0 at entry (AAPCS64))");
    // In the body the slots hold them, found through the call frame information.
    let body = entry + p.di.functions(Some("OSSemPend"))[0].size - 8;
    let vars = p.di.vars_at(body).unwrap();
    assert!(
        matches!(
            vars[0].location,
            Location::Memory {
                base: Base::Sp | Base::Reg(29),
                ..
            }
        ),
        "{}",
        vars[0]
    );
    let a = p.di.compile(body, "pevent->OSEventCnt", 0).unwrap();
    assert!(matches!(a.base, Base::Sp | Base::Reg(29)), "{a}");
    assert_eq!(
        (a.n_derefs, a.derefs[1], a.ty.kind),
        (2, p.off("OSEventCnt"), TypeKind::Unsigned),
        "{a}"
    );

    let p2 = Program::build("-O2");
    let vars = p2.di.vars_at(p2.entry("OSTaskNameSet")).unwrap();
    let places: Vec<String> = vars.iter().map(|v| v.to_string()).collect();
    assert_eq!(places, ["INT8U prio (x0)", "INT8U *pname (x1)", "INT8U *perr (x2)"]);
    assert_eq!(
        p2.di
            .functions(Some("OSSem*"))
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["OSSemPend", "OSSemPost"]
    );
}

#[test]
fn images_without_dwarf_are_refused() {
    if !have_cc() {
        return;
    }
    let dir = TempDir::new("nodebug");
    let src = dir.write("a.c", "int x; void _start(void) { for (;;) x++; }\n");
    let exe = dir.0.join("a.elf");
    cc(&["-O2", "-nostdlib", "-static"], &[&src], &exe);
    let e = DebugInfo::load(&std::fs::read(&exe).unwrap()).unwrap_err();
    assert_eq!(e, DebugInfoError::NoDebugInfo);
    assert!(e.to_string().contains("rebuild it with -g"), "{e}");
}

/// `HV_TRACE_CACHE` or `~/.cache/hv-trace`, as the CLI has it.
fn cache_dir() -> Option<PathBuf> {
    if let Some(c) = std::env::var_os("HV_TRACE_CACHE") {
        return Some(PathBuf::from(c));
    }
    Some(PathBuf::from(std::env::var_os("HOME")?).join(".cache").join("hv-trace"))
}

/// The newest cached RTOS image.
fn cached_rtos() -> Option<PathBuf> {
    let dir = cache_dir()?.join("rtos");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path().join("ucos-ii.elf"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

#[test]
fn the_real_rtos_image() {
    let Some(path) = cached_rtos() else {
        eprintln!("SKIP: no cached RTOS image (hv-trace build rtos makes one)");
        return;
    };
    let di = DebugInfo::load(&std::fs::read(&path).unwrap()).unwrap();
    let sem: Vec<String> = di.functions(Some("OSSem*")).into_iter().map(|f| f.name).collect();
    assert!(
        sem.iter().any(|n| n == "OSSemPost") && sem.iter().any(|n| n == "OSSemPend"),
        "{sem:?}"
    );
    let post = di.functions(Some("OSSemPost"))[0].entry;
    let a = di.compile(post, "pevent->OSEventCnt", 0).unwrap();
    assert_eq!((a.base, a.n_derefs, a.ty), (Base::Reg(0), 1, ty("u16")), "{a}");
    let pend = di.functions(Some("OSSemPend"))[0].entry;
    assert_eq!(di.compile(pend, "timeout", 0).unwrap().to_string(), "timeout=%x1:u32");
    let name_set = di.functions(Some("OSTaskNameSet"))[0].entry;
    assert_eq!(
        di.compile(name_set, "pname:string", 0).unwrap().to_string(),
        "pname=+0(%x1):string"
    );
    let prio = di.compile(post, "OSTCBCur->OSTCBPrio", 0).unwrap();
    assert!(
        matches!(prio.base, Base::Imm(_)) && prio.n_derefs == 2 && prio.ty == ty("u8"),
        "{prio}"
    );
}

#[test]
fn the_real_vmlinux() {
    let Some(path) = cache_dir()
        .map(|c| c.join("linux/build/vmlinux"))
        .filter(|p| p.exists())
    else {
        eprintln!("SKIP: no cached vmlinux (hv-trace build linux makes one)");
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let t = Instant::now();
    let di = DebugInfo::load(&bytes).unwrap();
    let load = t.elapsed();
    let t = Instant::now();
    let f = di.functions(Some("do_sys_openat2"));
    let functions = t.elapsed();
    assert_eq!(f.len(), 1, "{f:?}");
    let t = Instant::now();
    let filename = di.compile(f[0].entry, "filename:string", 0).unwrap();
    let compile = t.elapsed();
    assert_eq!(filename.to_string(), "filename=+0(%x1):string");
    assert_eq!(di.compile(f[0].entry, "dfd", 0).unwrap().to_string(), "dfd=%x0:s32");
    eprintln!("vmlinux: load {load:?}, functions {functions:?}, compile {compile:?}");
}
