//! A small JSON writer for `list --json`: a value tree written compactly, strings escaped as
//! RFC 8259 requires (quote, backslash and control characters; everything else as UTF-8).

use std::fmt::{self, Write};

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// An unsigned integer (counters, pids), written exactly.
    Uint(u64),
    /// A float; NaN and infinities have no JSON form and are written as `null`.
    Float(f64),
    Str(String),
    Array(Vec<Value>),
    /// Members in the order given (keys are not checked for duplicates).
    Object(Vec<(String, Value)>),
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Uint(n)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Uint(n.into())
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::Array(v)
    }
}

/// Builds an object member by member: `Obj::new().field("a", 1u64).build()`.
#[derive(Debug, Default)]
pub struct Obj(Vec<(String, Value)>);

impl Obj {
    pub fn new() -> Obj {
        Obj::default()
    }

    pub fn field(mut self, key: &str, v: impl Into<Value>) -> Obj {
        self.0.push((key.to_string(), v.into()));
        self
    }

    pub fn build(self) -> Value {
        Value::Object(self.0)
    }
}

/// Writes `s` as a JSON string literal, quotes included.
pub fn write_str(out: &mut impl Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\u{8}' => out.write_str("\\b")?,
            '\u{c}' => out.write_str("\\f")?,
            c if (c as u32) < 0x20 || c == '\u{7f}' => write!(out, "\\u{:04x}", c as u32)?,
            // U+2028/2029 are valid JSON but not JavaScript string literals: escaped too.
            '\u{2028}' | '\u{2029}' => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Uint(n) => write!(f, "{n}"),
            Value::Float(x) if x.is_finite() => {
                // Rust prints integral floats without a fraction ("3"), which JSON accepts.
                write!(f, "{x}")
            }
            Value::Float(_) => f.write_str("null"),
            Value::Str(s) => write_str(f, s),
            Value::Array(v) => {
                f.write_char('[')?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_char(']')
            }
            Value::Object(m) => {
                f.write_char('{')?;
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_str(f, k)?;
                    write!(f, ":{x}")?;
                }
                f.write_char('}')
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        Value::from(v).to_string()
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(s("plain"), r#""plain""#);
        assert_eq!(s(""), r#""""#);
        assert_eq!(s(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(s("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(s("\u{8}\u{c}"), r#""\b\f""#);
        assert_eq!(s("\u{0}\u{1}\u{1f}\u{7f}"), r#""\u0000\u0001\u001f\u007f""#);
        assert_eq!(s("/"), r#""/""#, "a solidus needs no escape");
        assert_eq!(s("é ü 网 🦀"), "\"é ü 网 🦀\"", "UTF-8 passes through");
        assert_eq!(s("\u{2028}\u{2029}"), r#""\u2028\u2029""#);
    }

    #[test]
    fn scalars() {
        assert_eq!(Value::Null.to_string(), "null");
        assert_eq!(Value::from(true).to_string(), "true");
        assert_eq!(Value::from(false).to_string(), "false");
        assert_eq!(Value::from(0u64).to_string(), "0");
        assert_eq!(Value::from(u64::MAX).to_string(), "18446744073709551615");
        assert_eq!(Value::from(1.5).to_string(), "1.5");
        assert_eq!(Value::from(3.0).to_string(), "3");
        assert_eq!(Value::from(-0.25).to_string(), "-0.25");
        assert_eq!(Value::from(f64::NAN).to_string(), "null");
        assert_eq!(Value::from(f64::INFINITY).to_string(), "null");
    }

    #[test]
    fn nested_documents() {
        let v = Obj::new()
            .field("name", "vale0")
            .field(
                "ports",
                vec![Obj::new().field("k\"ey", 1u32).build(), Value::Null],
            )
            .field("empty", Value::Array(vec![]))
            .field("none", Obj::new().build())
            .build();
        assert_eq!(
            v.to_string(),
            r#"{"name":"vale0","ports":[{"k\"ey":1},null],"empty":[],"none":{}}"#
        );
    }
}
