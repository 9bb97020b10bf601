//! Event bodies as `trace-cmd report` prints them.
//!
//! `sched_switch` and `sched_wakeup*` are printed as libtraceevent's scheduler plugin does
//! (`prev:pid [prio] S ==> next:pid [prio]`); every other event by evaluating its `print fmt`
//! (a C format string and C expressions over `REC->field`, with `__get_str`,
//! `__print_flags`, `__print_symbolic` and friends). When a print format uses something this
//! interpreter does not know, the event is printed as `name=value` pairs instead.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use crate::event::Event;
use crate::format::{EventFormat, Value};

/// Prints event bodies, caching each format's compiled print format.
#[derive(Default)]
pub struct BodyPrinter {
    // Keyed by the format's address; the Arc is kept so the address cannot be reused.
    cache: HashMap<usize, (Arc<EventFormat>, Option<Arc<Compiled>>)>,
    kallsyms: Kallsyms,
}

impl BodyPrinter {
    /// A printer with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// A printer that names code addresses (`%ps`, `%pS`) through a
    /// trace's `/proc/kallsyms` text.
    pub fn with_kallsyms(kallsyms: &str) -> Self {
        BodyPrinter {
            kallsyms: Kallsyms::parse(kallsyms),
            ..Self::default()
        }
    }

    /// Appends the body of `ev` to `out`.
    pub fn print(&mut self, ev: &Event, out: &mut String) {
        let fmt = &ev.format;
        if fmt.system == "sched" {
            match fmt.name.as_str() {
                "sched_switch" if sched_switch(ev, out) => return,
                // trace-cmd's sched plugin covers these two; sched_waking
                // prints through its print fmt.
                "sched_wakeup" | "sched_wakeup_new" if sched_wakeup(ev, out) => return,
                _ => {}
            }
        }
        if fmt.system == "timer" && self.hrtimer(ev, out) {
            return;
        }
        // trace-cmd's kmem plugin puts the caller in front: `(func+0xoff) `.
        if fmt.system == "kmem" && KMEM_CALLERS.contains(&fmt.name.as_str()) {
            if let Some((name, off)) = ev.int("call_site").and_then(|a| self.kallsyms.resolve(a as u64)) {
                let _ = write!(out, "({name}+0x{off:x}) ");
            }
        }
        let key = Arc::as_ptr(fmt) as usize;
        let compiled = self
            .cache
            .entry(key)
            .or_insert_with(|| (fmt.clone(), compile(fmt).map(Arc::new)))
            .1
            .clone();
        if let Some(c) = compiled {
            let mark = out.len();
            if c.eval(ev, &self.kallsyms, out).is_some() {
                return;
            }
            out.truncate(mark);
        }
        raw_body(ev, &self.kallsyms, out);
    }

    /// hrtimer_expire_entry and hrtimer_start as libtraceevent's hrtimer
    /// plugin prints them (which trace-cmd loads by default): the timer,
    /// then `now` or the expiry times, and the function as
    /// `name/0x<symbol address - value>` (its own arithmetic, kept).
    fn hrtimer(&self, ev: &Event, out: &mut String) -> bool {
        let name = ev.format.name.as_str();
        if name != "hrtimer_expire_entry" && name != "hrtimer_start" {
            return false;
        }
        let (Some(timer), Some(function)) = (ev.int("hrtimer").or_else(|| ev.int("timer")), ev.int("function")) else {
            return false;
        };
        let function = function as u64;
        let func = match self.kallsyms.resolve(function) {
            Some((sym, off)) => format!("{sym}/0x{:x}", (function - off).wrapping_sub(function)),
            None => format!("0x{function:08x}"),
        };
        let rest = if name == "hrtimer_expire_entry" {
            let Some(now) = ev.int("now") else { return false };
            format!(" now={} function={func}", now as u64)
        } else {
            let (Some(exp), Some(soft)) = (ev.int("expires"), ev.int("softexpires")) else {
                return false;
            };
            format!(" function={func} expires={} softexpires={}", exp as u64, soft as u64)
        };
        let _ = write!(out, "hrtimer=0x{:x}{rest}", timer as u64);
        true
    }

    /// The `trace-cmd report -R` body of `ev` (see [`raw_body`]).
    pub fn raw(&self, ev: &Event, out: &mut String) {
        raw_body(ev, &self.kallsyms, out);
    }
}

/// The kmem events whose caller trace-cmd's kmem plugin prints first.
const KMEM_CALLERS: [&str; 6] = [
    "kfree",
    "kmalloc",
    "kmalloc_node",
    "kmem_cache_alloc",
    "kmem_cache_alloc_node",
    "kmem_cache_free",
];

/// The code symbols of a `/proc/kallsyms` text: `(address, name, module)`
/// of its `ADDR TYPE NAME [MODULE]` lines of text (`t`, `T`) and weak (`w`,
/// `W`) symbols; lines without an address (kptr_restrict) and data are left
/// out.
pub fn code_symbols(text: &str) -> impl Iterator<Item = (u64, &str, Option<&str>)> {
    text.lines().filter_map(|l| {
        let mut w = l.split_whitespace();
        let addr = u64::from_str_radix(w.next()?, 16).ok().filter(|&a| a != 0)?;
        let kind = w.next()?;
        let name = w.next()?;
        matches!(kind, "t" | "T" | "w" | "W").then_some((addr, name, w.next()))
    })
}

/// Code symbols of a `/proc/kallsyms` text, by address.
#[derive(Debug, Default)]
pub struct Kallsyms {
    addrs: Vec<u64>,
    names: Vec<String>,
}

impl Kallsyms {
    /// The code symbols of a `/proc/kallsyms` text (see [`code_symbols`]).
    pub fn parse(text: &str) -> Self {
        let mut all: Vec<(u64, &str)> = code_symbols(text).map(|(addr, name, _)| (addr, name)).collect();
        all.sort_by_key(|s| s.0);
        all.dedup_by_key(|s| s.0);
        let (addrs, names) = all.into_iter().map(|(a, n)| (a, n.to_string())).unzip();
        Kallsyms { addrs, names }
    }

    /// The symbol at or below `addr`, and the offset into it.
    pub fn resolve(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.addrs.partition_point(|&a| a <= addr).checked_sub(1)?;
        Some((&self.names[i], addr - self.addrs[i]))
    }
}

/// `name=value` pairs separated by spaces (the `trace-cmd report -R` body),
/// numbers as libtraceevent prints raw fields: pointers in hex (`(nil)`),
/// `unsigned long`s as the function they point into (`sym+0xoff`) or else
/// in hex, the rest in decimal.
pub fn raw_body(ev: &Event, kallsyms: &Kallsyms, out: &mut String) {
    for (i, (field, v)) in ev.format.fields.iter().zip(ev.fields.iter()).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{}=", field.name);
        let ty = field.type_name.trim_start_matches("const ").trim();
        let pointer = ty.contains('*');
        let long = ty == "unsigned long";
        let bits = match *v {
            Value::Int(x) => Some(x as u64),
            Value::UInt(x) => Some(x),
            _ => None,
        };
        match bits {
            Some(0) if pointer => out.push_str("(nil)"),
            Some(x) if pointer => {
                let _ = write!(out, "0x{x:x}");
            }
            Some(x) if long => match kallsyms.resolve(x) {
                Some((name, off)) => {
                    let _ = write!(out, "{name}+0x{off:x}");
                }
                None => {
                    let _ = write!(out, "0x{x:x}");
                }
            },
            _ => {
                let _ = write!(out, "{v}");
            }
        }
    }
}

fn write_state(out: &mut String, val: i64) {
    const STATES: &[u8] = b"SDTtZXxW";
    let mut found = false;
    for (i, c) in STATES.iter().enumerate() {
        if val & (1 << i) == 0 {
            continue;
        }
        if found {
            out.push('|');
        }
        found = true;
        out.push(*c as char);
    }
    if !found {
        out.push('R');
    }
}

fn sched_switch(ev: &Event, out: &mut String) -> bool {
    let (Some(pp), Some(np)) = (ev.int("prev_pid"), ev.int("next_pid")) else {
        return false;
    };
    let _ = write!(out, "{}:{} ", ev.str("prev_comm").unwrap_or(""), pp);
    if let Some(p) = ev.int("prev_prio") {
        let _ = write!(out, "[{}] ", p as i32);
    }
    if let Some(s) = ev.int("prev_state") {
        write_state(out, s);
    }
    let _ = write!(out, " ==> {}:{}", ev.str("next_comm").unwrap_or(""), np);
    if let Some(p) = ev.int("next_prio") {
        let _ = write!(out, " [{}]", p as i32);
    }
    true
}

fn sched_wakeup(ev: &Event, out: &mut String) -> bool {
    let Some(pid) = ev.int("pid") else { return false };
    let _ = write!(out, "{}:{}", ev.str("comm").unwrap_or(""), pid);
    if let Some(p) = ev.int("prio") {
        let _ = write!(out, " [{}]", p as i32);
    }
    if let Some(s) = ev.int("success") {
        out.push_str(if s != 0 { " Success" } else { " Failed" });
    }
    if let Some(c) = ev.int("target_cpu") {
        let _ = write!(out, " CPU:{:03}", c as u64);
    }
    true
}

// ---- print fmt interpreter ----

#[derive(Debug, Clone)]
enum Expr {
    Num(i64),
    Str(String),
    Field(usize),
    Unary(char, Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Flags(Box<Expr>, String, Vec<(i64, String)>),
    Symbolic(Box<Expr>, Vec<(i64, String)>),
    /// A value cast to an unsigned (or pointer) type: comparisons with it
    /// are unsigned, as in C.
    Unsigned(Box<Expr>),
}

#[derive(Debug, Clone)]
enum V {
    I(i64),
    S(String),
}

impl V {
    fn int(&self) -> i64 {
        match self {
            V::I(v) => *v,
            V::S(s) => !s.is_empty() as i64,
        }
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Lit(String),
    Conv {
        spec: String,
        conv: char,
        /// The letter after `%p` (`s`, `S`, `f`, `F`, `B`, …), if any.
        ext: Option<char>,
        arg: usize,
    },
}

/// A compiled print format.
#[derive(Debug)]
pub struct Compiled {
    pieces: Vec<Piece>,
    args: Vec<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(i64),
    Str(String),
    Id(String),
    P(&'static str),
}

fn lex(s: &str) -> Option<Vec<Tok>> {
    const PUNCT: &[&str] = &[
        "->", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "(", ")", "{", "}", ",", "?", ":", "+", "-", "*", "/",
        "%", "<", ">", "&", "|", "^", "!", "~", "[", "]", ".",
    ];
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'"' {
            let mut lit = String::new();
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                    lit.push(match b[i] {
                        b'n' => '\n',
                        b't' => '\t',
                        b'\\' => '\\',
                        b'"' => '"',
                        o => o as char,
                    });
                } else {
                    lit.push(b[i] as char);
                }
                i += 1;
            }
            i += 1;
            // Adjacent literals concatenate.
            if let Some(Tok::Str(prev)) = out.last_mut() {
                prev.push_str(&lit);
            } else {
                out.push(Tok::Str(lit));
            }
        } else if c == b'\'' {
            // Character literal.
            let ch = *b.get(i + 1)?;
            out.push(Tok::Num(ch as i64));
            i += 3;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            let t = s[start..i].trim_end_matches(['u', 'U', 'l', 'L']);
            let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                u64::from_str_radix(h, 16).ok()? as i64
            } else if t.len() > 1 && t.starts_with('0') {
                i64::from_str_radix(&t[1..], 8).ok()?
            } else {
                t.parse::<u64>().ok()? as i64
            };
            out.push(Tok::Num(v));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Id(s[start..i].to_string()));
        } else {
            let p = PUNCT.iter().find(|p| s[i..].starts_with(**p))?;
            out.push(Tok::P(p));
            i += p.len();
        }
    }
    Some(out)
}

struct P<'a> {
    t: &'a [Tok],
    i: usize,
    fmt: &'a EventFormat,
}

const TYPE_WORDS: &[&str] = &[
    "unsigned", "signed", "int", "long", "short", "char", "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "bool",
    "void", "const", "size_t", "pid_t", "__u8", "__u16", "__u32", "__u64", "__s32", "__s64", "gfp_t",
];

impl P<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::P(x)) if *x == p) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn need(&mut self, p: &str) -> Option<()> {
        self.eat(p).then_some(())
    }

    fn expr(&mut self) -> Option<Expr> {
        let c = self.binary(0)?;
        if self.eat("?") {
            let a = self.expr()?;
            self.need(":")?;
            let b = self.expr()?;
            return Some(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Some(c)
    }

    fn binary(&mut self, min: u8) -> Option<Expr> {
        const OPS: &[(&str, u8)] = &[
            ("||", 1),
            ("&&", 2),
            ("|", 3),
            ("^", 4),
            ("&", 5),
            ("==", 6),
            ("!=", 6),
            ("<", 7),
            (">", 7),
            ("<=", 7),
            (">=", 7),
            ("<<", 8),
            (">>", 8),
            ("+", 9),
            ("-", 9),
            ("*", 10),
            ("/", 10),
            ("%", 10),
        ];
        let mut lhs = self.unary()?;
        while let Some(Tok::P(p)) = self.peek() {
            let Some(&(op, prec)) = OPS.iter().find(|(o, _)| o == p) else {
                break;
            };
            if prec < min.max(1) {
                break;
            }
            self.i += 1;
            let rhs = self.binary(prec + 1)?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Some(lhs)
    }

    fn unary(&mut self) -> Option<Expr> {
        for op in ["!", "-", "~"] {
            if self.eat(op) {
                let e = self.unary()?;
                return Some(Expr::Unary(op.chars().next()?, Box::new(e)));
            }
        }
        if self.eat("+") {
            return self.unary();
        }
        self.primary()
    }

    /// The `{ KEY, "name" }` pairs of `__print_flags`/`__print_symbolic`.
    /// A key is a constant expression (`4`, `-1`, `(1 << 3)`); a key that is
    /// a bare name the kernel did not resolve (`HRTIMER_MODE_ABS`) matches no
    /// value, as in trace-cmd, which then prints the value in hex.
    fn symbols(&mut self) -> Option<Vec<(i64, String)>> {
        let mut v = Vec::new();
        while self.eat(",") {
            self.need("{")?;
            let key = match (self.peek().cloned(), self.t.get(self.i + 1)) {
                (Some(Tok::Id(_)), Some(Tok::P(","))) => {
                    self.i += 1;
                    None
                }
                _ => Some(const_eval(&self.expr()?)?),
            };
            self.need(",")?;
            let Some(Tok::Str(s)) = self.peek().cloned() else {
                return None;
            };
            self.i += 1;
            self.need("}")?;
            if let Some(n) = key {
                v.push((n, s));
            }
        }
        Some(v)
    }

    fn primary(&mut self) -> Option<Expr> {
        match self.peek()?.clone() {
            Tok::Num(n) => {
                self.i += 1;
                Some(Expr::Num(n))
            }
            Tok::Str(s) => {
                self.i += 1;
                Some(Expr::Str(s))
            }
            Tok::P("(") => {
                self.i += 1;
                // A cast: only type words (and '*') up to ')'.
                let save = self.i;
                let mut is_cast = false;
                let mut unsigned = false;
                while let Some(t) = self.peek() {
                    match t {
                        Tok::Id(w) if TYPE_WORDS.contains(&w.as_str()) || w.ends_with("_t") => {
                            unsigned |= w == "unsigned" || w.starts_with('u') || w.starts_with("__u") || w == "size_t";
                            self.i += 1
                        }
                        Tok::P("*") if self.i > save => {
                            unsigned = true;
                            self.i += 1
                        }
                        Tok::P(")") if self.i > save => {
                            is_cast = true;
                            break;
                        }
                        _ => break,
                    }
                }
                if is_cast {
                    self.i += 1;
                    let e = self.unary()?;
                    return Some(if unsigned { Expr::Unsigned(Box::new(e)) } else { e });
                }
                self.i = save;
                let e = self.expr()?;
                self.need(")")?;
                Some(e)
            }
            Tok::Id(id) => {
                self.i += 1;
                match id.as_str() {
                    "REC" => {
                        self.need("->")?;
                        let Some(Tok::Id(f)) = self.peek().cloned() else {
                            return None;
                        };
                        self.i += 1;
                        let (i, _) = self.fmt.field(&f)?;
                        Some(Expr::Field(i))
                    }
                    "__get_str" | "__get_rel_str" | "__get_dynamic_array" => {
                        self.need("(")?;
                        let Some(Tok::Id(f)) = self.peek().cloned() else {
                            return None;
                        };
                        self.i += 1;
                        self.need(")")?;
                        let (i, _) = self.fmt.field(&f)?;
                        Some(Expr::Field(i))
                    }
                    "__print_flags" => {
                        self.need("(")?;
                        let v = self.expr()?;
                        self.need(",")?;
                        let Some(Tok::Str(d)) = self.peek().cloned() else {
                            return None;
                        };
                        self.i += 1;
                        let syms = self.symbols()?;
                        self.need(")")?;
                        Some(Expr::Flags(Box::new(v), d, syms))
                    }
                    // A branch-prediction hint: its value is its first argument.
                    "__builtin_expect" => {
                        self.need("(")?;
                        let v = self.expr()?;
                        self.need(",")?;
                        self.expr()?;
                        self.need(")")?;
                        Some(v)
                    }
                    "__print_symbolic" => {
                        self.need("(")?;
                        let v = self.expr()?;
                        let syms = self.symbols()?;
                        self.need(")")?;
                        Some(Expr::Symbolic(Box::new(v), syms))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// Compiles `fmt.print_fmt`; `None` if it uses anything unknown.
pub fn compile(fmt: &EventFormat) -> Option<Compiled> {
    let toks = lex(&fmt.print_fmt)?;
    let Some(Tok::Str(f)) = toks.first() else { return None };
    let mut p = P {
        t: &toks[1..],
        i: 0,
        fmt,
    };
    let mut args = Vec::new();
    while p.eat(",") {
        args.push(p.expr()?);
    }
    if p.i != p.t.len() {
        return None;
    }
    // Split the format string.
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = f.chars().peekable();
    let mut argn = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            lit.push('%');
            continue;
        }
        let mut spec = String::new();
        while let Some(&c) = chars.peek() {
            if "-+ #0123456789.".contains(c) {
                spec.push(c);
                chars.next();
            } else {
                break;
            }
        }
        while let Some(&c) = chars.peek() {
            if "hlLqjzt".contains(c) {
                chars.next();
            } else {
                break;
            }
        }
        let conv = chars.next()?;
        let mut ext = None;
        if conv == 'p' {
            // %ps, %pS, %pF, %pB…: the first letter says how to print the
            // address (a symbol, with an offset, …); the rest is eaten.
            while let Some(&c) = chars.peek().filter(|c| c.is_ascii_alphanumeric()) {
                ext.get_or_insert(c);
                chars.next();
            }
        }
        if spec.contains('*') || !"diouxXcsp".contains(conv) {
            return None;
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        pieces.push(Piece::Conv {
            spec,
            conv,
            ext,
            arg: argn,
        });
        argn += 1;
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    if argn > args.len() {
        return None;
    }
    Some(Compiled { pieces, args })
}

/// The value of an expression without fields (a symbol table's key).
fn const_eval(e: &Expr) -> Option<i64> {
    Some(match e {
        Expr::Num(n) => *n,
        Expr::Unsigned(e) => const_eval(e)?,
        Expr::Unary(op, a) => {
            let a = const_eval(a)?;
            match op {
                '!' => (a == 0) as i64,
                '-' => a.wrapping_neg(),
                _ => !a,
            }
        }
        Expr::Bin(op, a, b) => {
            let (a, b) = (const_eval(a)?, const_eval(b)?);
            match *op {
                "|" => a | b,
                "&" => a & b,
                "^" => a ^ b,
                "<<" => a.wrapping_shl(b as u32),
                ">>" => ((a as u64).wrapping_shr(b as u32)) as i64,
                "+" => a.wrapping_add(b),
                "-" => a.wrapping_sub(b),
                "*" => a.wrapping_mul(b),
                _ => return None,
            }
        }
        _ => return None,
    })
}

fn eval(e: &Expr, ev: &Event) -> Option<V> {
    Some(match e {
        Expr::Num(n) => V::I(*n),
        Expr::Str(s) => V::S(s.clone()),
        Expr::Field(i) => match ev.fields.get(*i)? {
            Value::Int(v) => V::I(*v),
            Value::UInt(v) => V::I(*v as i64),
            Value::Str(s) => V::S(s.clone()),
            _ => return None,
        },
        Expr::Unary(op, a) => {
            let a = eval(a, ev)?.int();
            V::I(match op {
                '!' => (a == 0) as i64,
                '-' => a.wrapping_neg(),
                _ => !a,
            })
        }
        Expr::Bin(op, ea, eb) => {
            let (a, b) = (eval(ea, ev)?.int(), eval(eb, ev)?.int());
            let unsigned = matches!(**ea, Expr::Unsigned(_)) || matches!(**eb, Expr::Unsigned(_));
            let (ua, ub) = (a as u64, b as u64);
            V::I(match *op {
                "<" if unsigned => (ua < ub) as i64,
                ">" if unsigned => (ua > ub) as i64,
                "<=" if unsigned => (ua <= ub) as i64,
                ">=" if unsigned => (ua >= ub) as i64,
                "||" => (a != 0 || b != 0) as i64,
                "&&" => (a != 0 && b != 0) as i64,
                "|" => a | b,
                "^" => a ^ b,
                "&" => a & b,
                "==" => (a == b) as i64,
                "!=" => (a != b) as i64,
                "<" => (a < b) as i64,
                ">" => (a > b) as i64,
                "<=" => (a <= b) as i64,
                ">=" => (a >= b) as i64,
                "<<" => a.wrapping_shl(b as u32),
                ">>" => ((a as u64).wrapping_shr(b as u32)) as i64,
                "+" => a.wrapping_add(b),
                "-" => a.wrapping_sub(b),
                "*" => a.wrapping_mul(b),
                "/" => a.checked_div(b)?,
                "%" => a.checked_rem(b)?,
                _ => return None,
            })
        }
        Expr::Unsigned(e) => eval(e, ev)?,
        Expr::Cond(c, a, b) => {
            if eval(c, ev)?.int() != 0 {
                eval(a, ev)?
            } else {
                eval(b, ev)?
            }
        }
        Expr::Flags(v, delim, syms) => {
            let mut val = eval(v, ev)?.int();
            let mut s = String::new();
            for (bit, name) in syms {
                if *bit == 0 && val != 0 {
                    continue;
                }
                if (*bit == 0 && val == 0) || (*bit != 0 && val & bit == *bit) {
                    if !s.is_empty() {
                        s.push_str(delim);
                    }
                    s.push_str(name);
                    val &= !bit;
                    if val == 0 {
                        break;
                    }
                }
            }
            if val != 0 {
                if !s.is_empty() {
                    s.push_str(delim);
                }
                let _ = write!(s, "0x{val:x}");
            }
            V::S(s)
        }
        Expr::Symbolic(v, syms) => {
            let val = eval(v, ev)?.int();
            match syms.iter().find(|(n, _)| *n == val) {
                Some((_, s)) => V::S(s.clone()),
                None => V::S(format!("0x{val:x}")),
            }
        }
    })
}

fn pad(out: &mut String, spec: &str, body: &str) {
    let left = spec.contains('-');
    let zero = spec.starts_with('0') || spec.contains("+0") || spec.contains("-0");
    let width: usize = spec
        .trim_start_matches(['-', '+', ' ', '#', '0'])
        .split('.')
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    let n = body.chars().count();
    if n >= width {
        out.push_str(body);
    } else if left {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', width - n));
    } else if zero && !body.starts_with('-') {
        out.extend(std::iter::repeat_n('0', width - n));
        out.push_str(body);
    } else if zero {
        out.push('-');
        out.extend(std::iter::repeat_n('0', width - n));
        out.push_str(&body[1..]);
    } else {
        out.extend(std::iter::repeat_n(' ', width - n));
        out.push_str(body);
    }
}

impl Compiled {
    fn eval(&self, ev: &Event, syms: &Kallsyms, out: &mut String) -> Option<()> {
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Conv { spec, conv, ext, arg } => {
                    let v = eval(self.args.get(*arg)?, ev)?;
                    let body = match (conv, &v) {
                        ('s', V::S(s)) => {
                            if let Some(prec) = spec.split('.').nth(1).and_then(|p| p.parse::<usize>().ok()) {
                                s.chars().take(prec).collect()
                            } else {
                                s.clone()
                            }
                        }
                        ('s', V::I(_)) => return None,
                        (_, V::S(_)) => return None,
                        ('d' | 'i', V::I(n)) => n.to_string(),
                        ('u', V::I(n)) => (*n as u64).to_string(),
                        ('x', V::I(n)) => {
                            if spec.contains('#') {
                                format!("0x{:x}", *n as u64)
                            } else {
                                format!("{:x}", *n as u64)
                            }
                        }
                        ('X', V::I(n)) => format!("{:X}", *n as u64),
                        ('o', V::I(n)) => format!("{:o}", *n as u64),
                        ('c', V::I(n)) => ((*n as u8) as char).to_string(),
                        // A function pointer, as trace-cmd resolves it through
                        // the file's kallsyms: %ps name, %pS name+0xoffset.
                        ('p', V::I(n)) => match (ext, syms.resolve(*n as u64)) {
                            (Some('s' | 'f'), Some((name, _))) => name.to_string(),
                            (Some('S' | 'F' | 'B'), Some((name, off))) => format!("{name}+0x{off:x}"),
                            // libtraceevent prints a null pointer as (nil).
                            _ if *n == 0 => "(nil)".to_string(),
                            _ => format!("0x{:x}", *n as u64),
                        },
                        _ => return None,
                    };
                    pad(out, spec, &body);
                }
            }
        }
        Some(())
    }
}
