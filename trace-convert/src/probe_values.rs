//! The values a probe hit fetched, read back from its event: `hvtrace:rtos_probe`'s
//! `what` field is `LABEL name=value …` as kprobe events print values (decimal, `0x…`,
//! `"…"` with `\"`, `\\`, `\xNN` escapes, `(fault)`), written by the module from the
//! hit's self-describing payload. Writers that keep types (JSON) and tools that use the
//! values (timing, the viewer) read them here.

/// One fetched value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeValue {
    /// A decimal without a sign (`u8`…`u64`).
    UInt(u64),
    /// A negative decimal (`s8`…`s64`).
    Int(i64),
    /// A hexadecimal (`x8`…`x64`, pointers, symbols).
    Hex(u64),
    /// A string.
    Str(String),
    /// The load failed in the guest (NULL, unmapped, outside the VM).
    Fault,
    /// Anything else, as written.
    Other(String),
}

/// A probe hit's label and values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeWhat<'a> {
    /// `OSSemPost`, `OSSemPend%return`, or the site's address.
    pub label: &'a str,
    /// `(name, value)` in the probe's order.
    pub values: Vec<(&'a str, ProbeValue)>,
}

impl ProbeWhat<'_> {
    /// Whether the hit is at a function's return.
    pub fn is_return(&self) -> bool {
        self.label.ends_with("%return")
    }

    /// The value named `name`.
    pub fn get(&self, name: &str) -> Option<&ProbeValue> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A return hit's time since the same task's entry, in ns.
    pub fn duration_ns(&self) -> Option<u64> {
        match (self.is_return(), self.get("duration")) {
            (true, Some(ProbeValue::UInt(d))) => Some(*d),
            _ => None,
        }
    }
}

/// Reads a `what` text. Never fails: what does not parse is kept as
/// [`ProbeValue::Other`] or ends the values.
pub fn parse(what: &str) -> ProbeWhat<'_> {
    let (label, mut rest) = what.split_once(' ').unwrap_or((what, ""));
    let mut values = Vec::new();
    while let Some((name, after)) = rest.split_once('=') {
        let name = name.trim();
        if name.is_empty() || name.contains(' ') {
            break;
        }
        let (value, next) = if let Some(s) = after.strip_prefix('"') {
            let (text, used) = unquote(s);
            (ProbeValue::Str(text), &s[used..])
        } else {
            let (word, next) = after.split_once(' ').unwrap_or((after, ""));
            (word_value(word), next)
        };
        values.push((name, value));
        rest = next.trim_start();
    }
    ProbeWhat { label, values }
}

fn word_value(w: &str) -> ProbeValue {
    if w == "(fault)" {
        return ProbeValue::Fault;
    }
    if let Some(h) = w.strip_prefix("0x") {
        if let Ok(v) = u64::from_str_radix(h, 16) {
            return ProbeValue::Hex(v);
        }
    }
    if let Ok(v) = w.parse::<u64>() {
        return ProbeValue::UInt(v);
    }
    if let Ok(v) = w.parse::<i64>() {
        return ProbeValue::Int(v);
    }
    ProbeValue::Other(w.to_string())
}

/// The string up to its closing quote (escapes undone) and the bytes used
/// from `s` (after the opening quote), the closing quote included.
fn unquote(s: &str) -> (String, usize) {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => return (String::from_utf8_lossy(&out).into_owned(), i + 1),
            b'\\' if i + 1 < b.len() && (b[i + 1] == b'"' || b[i + 1] == b'\\') => {
                out.push(b[i + 1]);
                i += 2;
            }
            b'\\' if i + 3 < b.len() && b[i + 1] == b'x' => {
                match u8::from_str_radix(&s[i + 2..i + 4], 16) {
                    Ok(v) => out.push(v),
                    Err(_) => out.extend_from_slice(&b[i..i + 4]),
                }
                i += 4;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_module_writes() {
        let w = parse(r#"OSSemPost cnt=3 name="SYNC-\"Mbox\"\x0a" d=-100 p=0xffff00004011 bad=(fault) odd=1.5"#);
        assert_eq!(w.label, "OSSemPost");
        assert_eq!(
            w.values,
            vec![
                ("cnt", ProbeValue::UInt(3)),
                ("name", ProbeValue::Str("SYNC-\"Mbox\"\n".into())),
                ("d", ProbeValue::Int(-100)),
                ("p", ProbeValue::Hex(0xffff_0000_4011)),
                ("bad", ProbeValue::Fault),
                ("odd", ProbeValue::Other("1.5".into())),
            ]
        );
        assert!(!w.is_return());
        let r = parse("OSSemPend%return duration=99871328");
        assert_eq!(r.duration_ns(), Some(99_871_328));
        assert_eq!(parse("0xffff000040101234").values, vec![]);
        // Garbage ends the values, never panics.
        for junk in ["", "=", "x a=\"unterminated", "x =1", "x a=\\x4", "x a=\"\\x4\""] {
            let _ = parse(junk);
        }
    }
}
