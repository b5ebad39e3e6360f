//! Python's `json` module: [`loads`] as `json.loads`, [`dumps`] as `json.dumps(v)` and
//! [`dumps_indent2`] as `json.dumps(v, indent=2)`, byte for byte as CPython 3.12.
//!
//! py-hamt's sharded Zarr store rewrites metadata documents with these calls, so the bytes it
//! stores (and hence CIDs) depend on Python's exact float formatting, escaping and dict order.

use std::fmt::Write;

use super::int::PyInt;
use super::repr::repr_float;

pub use super::decode::{loads, loads_str, loads_utf8, MAX_DEPTH};

/// A JSON value as Python's `json.loads` produces it (dict order kept).
#[derive(Debug, Clone, PartialEq)]
pub enum PyJson {
    /// `None`.
    Null,
    /// `True` / `False`.
    Bool(bool),
    /// An `int` (JSON number without fraction or exponent).
    Int(PyInt),
    /// A `float` (JSON number with fraction or exponent, or `NaN` / `Infinity` / `-Infinity`).
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `list`.
    Array(Vec<PyJson>),
    /// A `dict`, in insertion order with unique keys (`loads` keeps the first position and the
    /// last value of a repeated key, like a Python dict).
    Object(Vec<(String, PyJson)>),
}

/// What went wrong in [`loads`]; `Display` is the message of the Python exception named by
/// [`PyJsonError::python_exception`]. Positions count characters (code points) of the decoded
/// text, as Python's do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PyJsonError {
    /// `json.JSONDecodeError` (a `ValueError`).
    #[error("{msg}: line {lineno} column {colno} (char {pos})")]
    Decode {
        /// Python's message, e.g. "Expecting value".
        msg: &'static str,
        /// Character offset.
        pos: usize,
        /// 1-based line.
        lineno: usize,
        /// 1-based column.
        colno: usize,
    },
    /// An integer literal over CPython's 4300-digit limit: a plain `ValueError`, not a
    /// `JSONDecodeError`.
    #[error("{}", super::int::int_limit_message(*digits))]
    IntTooLong {
        /// Number of digits in the literal.
        digits: usize,
    },
    /// Nesting deeper than [`MAX_DEPTH`]: Python's `RecursionError`.
    #[error(
        "maximum recursion depth exceeded while decoding a JSON {} from a unicode string",
        if *object { "object" } else { "array" }
    )]
    TooDeep {
        /// Whether the container that went too deep is an object (else an array).
        object: bool,
    },
    /// Bytes that are not UTF-8: Python's `UnicodeDecodeError`.
    #[error("'utf-8' codec can't decode {}: {reason}", utf8_span(*start, *end, *byte))]
    InvalidUtf8 {
        /// Offset of the first bad byte (after a UTF-8 BOM, as Python counts).
        start: usize,
        /// Offset after the bad sequence.
        end: usize,
        /// The first bad byte.
        byte: u8,
        /// "invalid start byte", "invalid continuation byte" or "unexpected end of data".
        reason: &'static str,
    },
    /// Python would decode the bytes as UTF-16 or UTF-32 (BOM or NUL pattern); not supported.
    #[error(
        "input looks {encoding}-encoded (json.loads would decode it so); only UTF-8 is supported"
    )]
    UnsupportedEncoding {
        /// The codec Python's `json.detect_encoding` picks.
        encoding: &'static str,
    },
    /// A string holds a lone surrogate (`"\ud800"`, or UTF-8-encoded surrogate bytes). Python
    /// accepts it, a Rust `String` cannot hold it; reported only if the document is otherwise
    /// valid, so any error Python would raise takes precedence.
    #[error("lone surrogate in a string at line {lineno} column {colno} (char {pos}); Python keeps it, Rust cannot")]
    LoneSurrogate {
        /// Character offset of the escape or encoded surrogate.
        pos: usize,
        /// 1-based line.
        lineno: usize,
        /// 1-based column.
        colno: usize,
    },
}

fn utf8_span(start: usize, end: usize, byte: u8) -> String {
    if end <= start + 1 {
        format!("byte 0x{byte:02x} in position {start}")
    } else {
        format!("bytes in position {start}-{}", end - 1)
    }
}

impl PyJsonError {
    /// Name of the exception Python raises: `JSONDecodeError`, `ValueError`,
    /// `RecursionError`, `UnicodeDecodeError`; `None` where Python would succeed or decode
    /// differently ([`PyJsonError::LoneSurrogate`], [`PyJsonError::UnsupportedEncoding`]).
    pub fn python_exception(&self) -> Option<&'static str> {
        match self {
            PyJsonError::Decode { .. } => Some("JSONDecodeError"),
            PyJsonError::IntTooLong { .. } => Some("ValueError"),
            PyJsonError::TooDeep { .. } => Some("RecursionError"),
            PyJsonError::InvalidUtf8 { .. } => Some("UnicodeDecodeError"),
            PyJsonError::UnsupportedEncoding { .. } | PyJsonError::LoneSurrogate { .. } => None,
        }
    }
}

impl PyJson {
    /// `d.get(key)` on a dict; `None` for a missing key or a non-dict.
    pub fn get(&self, key: &str) -> Option<&PyJson> {
        self.as_object()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Mutable [`PyJson::get`].
    pub fn get_mut(&mut self, key: &str) -> Option<&mut PyJson> {
        self.as_object_mut()?
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// `d.pop(key, None)`: removes the key, keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> Option<PyJson> {
        let entries = self.as_object_mut()?;
        let i = entries.iter().position(|(k, _)| k == key)?;
        Some(entries.remove(i).1)
    }

    /// `d[key] = value`: replaces in place (keeping the position) or appends; returns the old
    /// value. Does nothing and returns `None` on a non-dict.
    pub fn insert(&mut self, key: impl Into<String>, value: PyJson) -> Option<PyJson> {
        let entries = self.as_object_mut()?;
        let key = key.into();
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slot)) => Some(std::mem::replace(slot, value)),
            None => {
                entries.push((key, value));
                None
            }
        }
    }

    /// The entries of a dict.
    pub fn as_object(&self) -> Option<&Vec<(String, PyJson)>> {
        match self {
            PyJson::Object(entries) => Some(entries),
            _ => None,
        }
    }

    /// Mutable entries of a dict (keep keys unique).
    pub fn as_object_mut(&mut self) -> Option<&mut Vec<(String, PyJson)>> {
        match self {
            PyJson::Object(entries) => Some(entries),
            _ => None,
        }
    }

    /// The items of a list.
    pub fn as_array(&self) -> Option<&Vec<PyJson>> {
        match self {
            PyJson::Array(items) => Some(items),
            _ => None,
        }
    }

    /// Mutable items of a list.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<PyJson>> {
        match self {
            PyJson::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The text of a str.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyJson::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            PyJson::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value of an int (not of a bool, unlike Python's `isinstance(v, int)`).
    pub fn as_int(&self) -> Option<&PyInt> {
        match self {
            PyJson::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The value of a float.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PyJson::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// True for `None`.
    pub fn is_null(&self) -> bool {
        matches!(self, PyJson::Null)
    }

    /// Python's `int(v)` (as py-hamt applies to shape entries): ints as they are, bools as
    /// 0/1, floats truncated, strings through [`parse_int`](super::int::parse_int). `Err` holds
    /// Python's exception type name and message.
    pub fn to_py_int(&self) -> Result<PyInt, (&'static str, String)> {
        match self {
            PyJson::Int(i) => Ok(i.clone()),
            PyJson::Bool(b) => Ok(PyInt::from(u8::from(*b))),
            PyJson::Float(x) if x.is_nan() => Err((
                "ValueError",
                "cannot convert float NaN to integer".to_owned(),
            )),
            PyJson::Float(x) => PyInt::from_f64_trunc(*x).ok_or_else(|| {
                (
                    "OverflowError",
                    "cannot convert float infinity to integer".to_owned(),
                )
            }),
            PyJson::Str(s) => super::int::parse_int(s).map_err(|msg| ("ValueError", msg)),
            PyJson::Null | PyJson::Array(_) | PyJson::Object(_) => Err((
                "TypeError",
                format!(
                    "int() argument must be a string, a bytes-like object or a real number, \
                     not '{}'",
                    self.type_name()
                ),
            )),
        }
    }

    /// Python's `type(v).__name__`: `NoneType`, `bool`, `int`, `float`, `str`, `list`, `dict`.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyJson::Null => "NoneType",
            PyJson::Bool(_) => "bool",
            PyJson::Int(_) => "int",
            PyJson::Float(_) => "float",
            PyJson::Str(_) => "str",
            PyJson::Array(_) => "list",
            PyJson::Object(_) => "dict",
        }
    }
}

impl From<bool> for PyJson {
    fn from(v: bool) -> PyJson {
        PyJson::Bool(v)
    }
}

impl From<PyInt> for PyJson {
    fn from(v: PyInt) -> PyJson {
        PyJson::Int(v)
    }
}

impl From<i64> for PyJson {
    fn from(v: i64) -> PyJson {
        PyJson::Int(v.into())
    }
}

impl From<u64> for PyJson {
    fn from(v: u64) -> PyJson {
        PyJson::Int(v.into())
    }
}

impl From<f64> for PyJson {
    fn from(v: f64) -> PyJson {
        PyJson::Float(v)
    }
}

impl From<&str> for PyJson {
    fn from(v: &str) -> PyJson {
        PyJson::Str(v.to_owned())
    }
}

impl From<String> for PyJson {
    fn from(v: String) -> PyJson {
        PyJson::Str(v)
    }
}

impl From<Vec<PyJson>> for PyJson {
    fn from(v: Vec<PyJson>) -> PyJson {
        PyJson::Array(v)
    }
}

/// `json.dumps(v)`: separators `", "` and `": "`, `ensure_ascii=True`, `allow_nan=True`.
pub fn dumps(v: &PyJson) -> String {
    encode(v, None)
}

/// `json.dumps(v, indent=2)`: one item per line indented by two spaces per level, `","` at
/// line ends, `": "` after keys, no trailing newline; empty containers stay `[]` / `{}`.
pub fn dumps_indent2(v: &PyJson) -> String {
    encode(v, Some(2))
}

/// Python's `py_encode_basestring_ascii`: `"`, `\`, `\n`, `\r`, `\t`, `\b`, `\f` as
/// backslash escapes, every other character outside `' '..='~'` (controls, DEL, non-ASCII) as
/// `\uXXXX` in lowercase hex, astral characters as a surrogate pair. `/` is not escaped.
pub fn encode_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// `json.dumps` of a float with `allow_nan=True`: `float.__repr__`, but `NaN`, `Infinity`,
/// `-Infinity` for the non-finite values.
pub fn encode_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        repr_float(x)
    }
}

/// A container being written: its remaining children and whether one was written yet.
enum Open<'a> {
    Array(std::slice::Iter<'a, PyJson>, bool),
    Object(std::slice::Iter<'a, (String, PyJson)>, bool),
}

/// The encoder, iterative so that nesting depth cannot overflow the stack.
fn encode(root: &PyJson, indent: Option<usize>) -> String {
    let mut out = String::new();
    let mut stack: Vec<Open<'_>> = Vec::new();
    let newline = |out: &mut String, level: usize| {
        if let Some(width) = indent {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', width * level));
        }
    };
    let item_separator = if indent.is_some() { "," } else { ", " };
    let mut next = Some(root);
    loop {
        if let Some(v) = next.take() {
            match v {
                PyJson::Null => out.push_str("null"),
                PyJson::Bool(true) => out.push_str("true"),
                PyJson::Bool(false) => out.push_str("false"),
                PyJson::Int(i) => {
                    let _ = write!(out, "{i}");
                }
                PyJson::Float(x) => out.push_str(&encode_float(*x)),
                PyJson::Str(s) => encode_str(s, &mut out),
                PyJson::Array(items) if items.is_empty() => out.push_str("[]"),
                PyJson::Object(entries) if entries.is_empty() => out.push_str("{}"),
                PyJson::Array(items) => {
                    out.push('[');
                    stack.push(Open::Array(items.iter(), false));
                }
                PyJson::Object(entries) => {
                    out.push('{');
                    stack.push(Open::Object(entries.iter(), false));
                }
            }
        }
        let level = stack.len();
        let Some(top) = stack.last_mut() else { break };
        let (child, close) = match top {
            Open::Array(items, started) => match items.next() {
                Some(item) => {
                    if std::mem::replace(started, true) {
                        out.push_str(item_separator);
                    }
                    newline(&mut out, level);
                    (Some(item), ']')
                }
                None => (None, ']'),
            },
            Open::Object(entries, started) => match entries.next() {
                Some((key, value)) => {
                    if std::mem::replace(started, true) {
                        out.push_str(item_separator);
                    }
                    newline(&mut out, level);
                    encode_str(key, &mut out);
                    out.push_str(": ");
                    (Some(value), '}')
                }
                None => (None, '}'),
            },
        };
        match child {
            Some(child) => next = Some(child),
            None => {
                stack.pop();
                newline(&mut out, level - 1);
                out.push(close);
            }
        }
    }
    out
}
