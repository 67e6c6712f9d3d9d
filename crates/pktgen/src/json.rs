//! A JSON object writer for pkt-gen's `--json` lines: flat objects of numbers and strings,
//! and arrays of such objects or of integers. Hand-written because that is all pkt-gen emits; a
//! serialization framework would add a dependency for forty lines.

use std::fmt::Write;

/// One JSON object, built field by field; [`Obj::finish`] closes it.
#[derive(Debug, Clone)]
pub struct Obj(String);

impl Default for Obj {
    fn default() -> Self {
        Obj::new()
    }
}

impl Obj {
    pub fn new() -> Obj {
        Obj(String::from("{"))
    }

    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        string(&mut self.0, k);
        self.0.push(':');
    }

    /// A string field.
    pub fn str(mut self, k: &str, v: &str) -> Obj {
        self.key(k);
        string(&mut self.0, v);
        self
    }

    /// An integer field.
    pub fn u64(mut self, k: &str, v: u64) -> Obj {
        self.key(k);
        let _ = write!(self.0, "{v}");
        self
    }

    /// A number field; NaN and infinities (which JSON lacks) become `null`.
    pub fn f64(mut self, k: &str, v: f64) -> Obj {
        self.key(k);
        if v.is_finite() {
            let _ = write!(self.0, "{v}");
        } else {
            self.0.push_str("null");
        }
        self
    }

    /// An array of objects.
    pub fn array(mut self, k: &str, items: impl IntoIterator<Item = Obj>) -> Obj {
        self.key(k);
        self.0.push('[');
        for (i, o) in items.into_iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.0.push_str(&o.finish());
        }
        self.0.push(']');
        self
    }

    /// An array of integers.
    pub fn u64s(mut self, k: &str, items: &[u64]) -> Obj {
        self.key(k);
        self.0.push('[');
        for (i, v) in items.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            let _ = write!(self.0, "{v}");
        }
        self.0.push(']');
        self
    }

    /// The object's text, one line.
    pub fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// Appends `s` as a JSON string literal.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_escapes() {
        assert_eq!(Obj::new().finish(), "{}");
        let o = Obj::new()
            .str("type", "summary")
            .u64("packets", 5000)
            .f64("pps", 2.5)
            .f64("bad", f64::NAN)
            .str("q", "a\"b\\c\n\u{1}");
        assert_eq!(
            o.finish(),
            r#"{"type":"summary","packets":5000,"pps":2.5,"bad":null,"q":"a\"b\\c\n\u0001"}"#
        );
        let a = Obj::new().array("h", [Obj::new().u64("n", 1), Obj::new().u64("n", 2)]);
        assert_eq!(a.finish(), r#"{"h":[{"n":1},{"n":2}]}"#);
        assert_eq!(Obj::new().array("h", []).finish(), r#"{"h":[]}"#);
    }
}
