//! `json.loads`, following CPython 3.12's C scanner (`Modules/_json.c`) step by step so that
//! the same inputs are accepted and the same error (message and position) is reported.
//!
//! The scanner works on the UTF-8 bytes: every character the grammar looks at is ASCII, and
//! non-ASCII characters are whole multi-byte sequences of bytes >= 0x80, so byte scanning
//! takes the same decisions as Python's code-point scanning; positions are converted to
//! code-point offsets only when reporting an error. It is iterative (explicit stack), so
//! hostile nesting cannot overflow the Rust stack.

use std::collections::HashMap;

use super::int::{PyInt, MAX_STR_DIGITS};
use super::json::{PyJson, PyJsonError};

/// Deepest nesting accepted: CPython 3.12 raises `RecursionError` on the 1498th nested
/// container (its C recursion limit, measured from ordinary Python code).
pub const MAX_DEPTH: usize = 1497;

/// `json.loads(bytes)`: decoded as `json.detect_encoding` picks (a UTF-8 BOM is skipped;
/// UTF-16/32 are detected but not supported), with `surrogatepass` (encoded surrogates
/// become lone surrogates, which we report as [`PyJsonError::LoneSurrogate`]).
pub fn loads(bytes: &[u8]) -> Result<PyJson, PyJsonError> {
    if let Some(encoding) = non_utf8_encoding(bytes) {
        return Err(PyJsonError::UnsupportedEncoding { encoding });
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let (text, surrogate) = decode_utf8_surrogatepass(bytes)?;
    Parser {
        s: &text,
        b: text.as_bytes(),
        surrogate,
    }
    .document()
}

/// `json.loads(bytes.decode("utf-8"))`: strict UTF-8 (encoded surrogates are errors), and a
/// leading BOM is then a `JSONDecodeError`, as with [`loads_str`].
pub fn loads_utf8(bytes: &[u8]) -> Result<PyJson, PyJsonError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => loads_str(text),
        Err(e) => Err(utf8_error(&e, bytes, 0)),
    }
}

/// `json.loads(str)`: as [`loads`] on already decoded text, except that a leading BOM is an
/// error ("Unexpected UTF-8 BOM").
pub fn loads_str(s: &str) -> Result<PyJson, PyJsonError> {
    let parser = Parser {
        s,
        b: s.as_bytes(),
        surrogate: None,
    };
    if s.starts_with('\u{feff}') {
        return Err(parser.error("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0));
    }
    parser.document()
}

/// `json.detect_encoding`, for the encodings other than UTF-8.
fn non_utf8_encoding(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x00\x00\xfe\xff") || b.starts_with(b"\xff\xfe\x00\x00") {
        return Some("utf-32");
    }
    if b.starts_with(b"\xfe\xff") || b.starts_with(b"\xff\xfe") {
        return Some("utf-16");
    }
    if b.starts_with(b"\xef\xbb\xbf") {
        return None;
    }
    match *b {
        [0, 0, _, _, ..] => Some("utf-32-be"),
        [0, _, _, _, ..] => Some("utf-16-be"),
        [_, 0, 0, 0, ..] => Some("utf-32-le"),
        [_, 0, _, _, ..] => Some("utf-16-le"),
        [0, _] => Some("utf-16-be"),
        [_, 0] => Some("utf-16-le"),
        _ => None,
    }
}

/// `bytes.decode("utf-8", "surrogatepass")`. Encoded surrogates (`ED A0..BF 80..BF`) become
/// U+FFFD, which the grammar treats like the surrogate Python would have (an ordinary
/// character); the byte offset of the first one in the output is returned.
fn decode_utf8_surrogatepass(
    mut bytes: &[u8],
) -> Result<(std::borrow::Cow<'_, str>, Option<usize>), PyJsonError> {
    let mut out = String::new();
    let mut surrogate = None;
    let mut offset = 0;
    loop {
        match std::str::from_utf8(bytes) {
            Ok(rest) if out.is_empty() && offset == 0 => return Ok((rest.into(), None)),
            Ok(rest) => {
                out.push_str(rest);
                return Ok((out.into(), surrogate));
            }
            Err(e) => {
                let (valid, bad) = bytes.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                if let [0xed, 0xa0..=0xbf, 0x80..=0xbf, ..] = bad {
                    surrogate.get_or_insert(out.len());
                    out.push('\u{fffd}');
                    offset += valid.len() + 3;
                    bytes = &bad[3..];
                    continue;
                }
                return Err(utf8_error(&e, bytes, offset));
            }
        }
    }
}

/// Python's `UnicodeDecodeError` for the first bad sequence of `bytes` (which start at
/// `offset` of the decoded input), with CPython's reason wording.
fn utf8_error(e: &std::str::Utf8Error, bytes: &[u8], offset: usize) -> PyJsonError {
    let bad = bytes.get(e.valid_up_to()..).unwrap_or_default();
    let start = offset + e.valid_up_to();
    let byte = bad.first().copied().unwrap_or(0);
    let (len, reason) = match e.error_len() {
        None => (bad.len(), "unexpected end of data"),
        Some(n) if (0xc2..=0xf4).contains(&byte) => (n, "invalid continuation byte"),
        Some(n) => (n, "invalid start byte"),
    };
    PyJsonError::InvalidUtf8 {
        start,
        end: start + len,
        byte,
        reason,
    }
}

/// Python's JSON whitespace (only these four, unlike `str.isspace`).
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0;
    for &d in b {
        v = v << 4 | char::from(d).to_digit(16)?;
    }
    Some(v)
}

/// A container under construction; an object also holds the key awaiting its value.
enum Frame {
    Array(Vec<PyJson>),
    Object(Vec<(String, PyJson)>, String),
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    /// Byte offset of the first lone surrogate seen, reported if nothing else fails.
    surrogate: Option<usize>,
}

impl Parser<'_> {
    /// Code-point offset, line and column of byte offset `pos`, as `JSONDecodeError` computes.
    fn locate(&self, pos: usize) -> (usize, usize, usize) {
        let prefix = self.b.get(..pos).unwrap_or(self.b);
        // Count code points by their first bytes: no UTF-8 boundary assumptions needed.
        let chars = |bytes: &[u8]| bytes.iter().filter(|&&b| b & 0xc0 != 0x80).count();
        let lineno = prefix.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = prefix
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let char_pos = chars(prefix);
        (char_pos, lineno, chars(&prefix[line_start..]) + 1)
    }

    fn error(&self, msg: &'static str, pos: usize) -> PyJsonError {
        let (pos, lineno, colno) = self.locate(pos);
        PyJsonError::Decode {
            msg,
            pos,
            lineno,
            colno,
        }
    }

    fn skip_ws(&self, mut i: usize) -> usize {
        while self.b.get(i).copied().is_some_and(is_ws) {
            i += 1;
        }
        i
    }

    /// `JSONDecoder.decode`: leading whitespace, one value, trailing whitespace, nothing else.
    fn document(mut self) -> Result<PyJson, PyJsonError> {
        let start = self.skip_ws(0);
        let (value, end) = self.value(start)?;
        let end = self.skip_ws(end);
        if end != self.b.len() {
            return Err(self.error("Extra data", end));
        }
        if let Some(pos) = self.surrogate {
            let (pos, lineno, colno) = self.locate(pos);
            return Err(PyJsonError::LoneSurrogate { pos, lineno, colno });
        }
        Ok(value)
    }

    /// `scan_once` at `idx`, with containers handled on an explicit stack. Returns the value
    /// and the offset after it.
    fn value(&mut self, mut idx: usize) -> Result<(PyJson, usize), PyJsonError> {
        let b = self.b;
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            // Scan one value, or open a container and go scan its first element.
            let mut value = match b.get(idx) {
                None => return Err(self.error("Expecting value", idx)),
                Some(b'"') => {
                    let (s, next) = self.string(idx)?;
                    idx = next;
                    PyJson::Str(s)
                }
                Some(&open @ (b'{' | b'[')) => {
                    let object = open == b'{';
                    if stack.len() >= MAX_DEPTH {
                        return Err(PyJsonError::TooDeep { object });
                    }
                    idx = self.skip_ws(idx + 1);
                    match (object, b.get(idx)) {
                        (true, Some(b'}')) | (false, Some(b']')) => {
                            idx += 1;
                            if object {
                                PyJson::Object(Vec::new())
                            } else {
                                PyJson::Array(Vec::new())
                            }
                        }
                        (true, _) => {
                            let (key, next) = self.key(idx)?;
                            stack.push(Frame::Object(Vec::new(), key));
                            idx = next;
                            continue;
                        }
                        (false, _) => {
                            stack.push(Frame::Array(Vec::new()));
                            continue;
                        }
                    }
                }
                Some(_) => {
                    let rest = &b[idx..];
                    // The C scanner's switch on the first character.
                    let constant: Option<(&[u8], PyJson)> = match b[idx] {
                        b'n' => Some((b"null", PyJson::Null)),
                        b't' => Some((b"true", PyJson::Bool(true))),
                        b'f' => Some((b"false", PyJson::Bool(false))),
                        b'N' => Some((b"NaN", PyJson::Float(f64::NAN))),
                        b'I' => Some((b"Infinity", PyJson::Float(f64::INFINITY))),
                        b'-' => Some((b"-Infinity", PyJson::Float(f64::NEG_INFINITY))),
                        _ => None,
                    };
                    match constant.filter(|(lit, _)| rest.starts_with(lit)) {
                        Some((lit, value)) => {
                            idx += lit.len();
                            value
                        }
                        None => {
                            let (number, next) = self.number(idx)?;
                            idx = next;
                            number
                        }
                    }
                }
            };
            // Hand the value to its container; close every container that ends here.
            loop {
                let Some(frame) = stack.last_mut() else {
                    return Ok((value, idx));
                };
                idx = self.skip_ws(idx);
                let (close, done) = match frame {
                    Frame::Array(items) => {
                        items.push(value);
                        (b']', b.get(idx) == Some(&b']'))
                    }
                    Frame::Object(entries, key) => {
                        entries.push((std::mem::take(key), value));
                        (b'}', b.get(idx) == Some(&b'}'))
                    }
                };
                if done {
                    idx += 1;
                    value = match stack.pop() {
                        Some(Frame::Array(items)) => PyJson::Array(items),
                        Some(Frame::Object(entries, _)) => PyJson::Object(dedup(entries)),
                        // Unreachable: `frame` above is the top of the stack.
                        None => return Err(self.error("Expecting value", idx)),
                    };
                    continue;
                }
                if b.get(idx) != Some(&b',') {
                    return Err(self.error("Expecting ',' delimiter", idx));
                }
                idx = self.skip_ws(idx + 1);
                if close == b'}' {
                    let (next_key, next) = self.key(idx)?;
                    if let Some(Frame::Object(_, key)) = stack.last_mut() {
                        *key = next_key;
                    }
                    idx = next;
                }
                break;
            }
        }
    }

    /// An object key at `idx`, the `:` and the whitespace after it; returns the key and the
    /// offset of its value.
    fn key(&mut self, idx: usize) -> Result<(String, usize), PyJsonError> {
        if self.b.get(idx) != Some(&b'"') {
            return Err(self.error("Expecting property name enclosed in double quotes", idx));
        }
        let (key, next) = self.string(idx)?;
        let colon = self.skip_ws(next);
        if self.b.get(colon) != Some(&b':') {
            return Err(self.error("Expecting ':' delimiter", colon));
        }
        Ok((key, self.skip_ws(colon + 1)))
    }

    /// `scanstring_unicode` (strict) for the string whose opening quote is at `begin`.
    fn string(&mut self, begin: usize) -> Result<(String, usize), PyJsonError> {
        let (s, b) = (self.s, self.b);
        let len = b.len();
        let mut out = String::new();
        let mut end = begin + 1;
        loop {
            let mut next = end;
            while let Some(&d) = b.get(next) {
                if d == b'"' || d == b'\\' {
                    break;
                }
                if d <= 0x1f {
                    return Err(self.error("Invalid control character at", next));
                }
                next += 1;
            }
            if next >= len {
                return Err(self.error("Unterminated string starting at", begin));
            }
            // `end` and `next` sit after/at ASCII bytes, so both are char boundaries.
            out.push_str(s.get(end..next).unwrap_or_default());
            if b[next] == b'"' {
                return Ok((out, next + 1));
            }
            next += 1; // past the backslash
            let Some(&escape) = b.get(next) else {
                return Err(self.error("Unterminated string starting at", begin));
            };
            if escape != b'u' {
                end = next + 1;
                out.push(match escape {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    _ => return Err(self.error("Invalid \\escape", end - 2)),
                });
                continue;
            }
            let u = next;
            end = u + 5;
            // Python needs one more character after the four digits (`end >= len` fails).
            let Some(c) = b.get(u + 1..end).filter(|_| end < len).and_then(hex4) else {
                return Err(self.error("Invalid \\uXXXX escape", u));
            };
            let high = (0xd800..0xdc00).contains(&c);
            if high && end + 6 < len && b[end] == b'\\' && b[end + 1] == b'u' {
                let Some(c2) = hex4(&b[end + 2..end + 6]) else {
                    return Err(self.error("Invalid \\uXXXX escape", end + 1));
                };
                if (0xdc00..0xe000).contains(&c2) {
                    let joined = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
                    out.push(char::from_u32(joined).unwrap_or('\u{fffd}'));
                    end += 6;
                    continue;
                }
            }
            match char::from_u32(c) {
                Some(ch) => out.push(ch),
                None => {
                    // A lone surrogate: Python keeps it; remember where, go on like Python.
                    self.surrogate.get_or_insert(u - 1);
                    out.push('\u{fffd}');
                }
            }
        }
    }

    /// `_match_number_unicode` at `start` (which is not a constant).
    fn number(&self, start: usize) -> Result<(PyJson, usize), PyJsonError> {
        let b = self.b;
        let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
        let mut idx = start;
        if b.get(idx) == Some(&b'-') {
            idx += 1;
        }
        match b.get(idx) {
            Some(b'1'..=b'9') => {
                idx += 1;
                while digit(idx) {
                    idx += 1;
                }
            }
            Some(b'0') => idx += 1,
            _ => return Err(self.error("Expecting value", start)),
        }
        let mut is_float = false;
        if b.get(idx) == Some(&b'.') && digit(idx + 1) {
            is_float = true;
            idx += 2;
            while digit(idx) {
                idx += 1;
            }
        }
        // Python only looks at an exponent if a character follows the `e`.
        if idx + 1 < b.len() && matches!(b[idx], b'e' | b'E') {
            let e_start = idx;
            idx += 1;
            if idx + 1 < b.len() && matches!(b[idx], b'-' | b'+') {
                idx += 1;
            }
            while digit(idx) {
                idx += 1;
            }
            if digit(idx - 1) {
                is_float = true;
            } else {
                idx = e_start;
            }
        }
        let text = self.s.get(start..idx).unwrap_or_default();
        if is_float {
            // Rust's parse is correctly rounded like Python's float(); overflow gives inf.
            let x: f64 = text
                .parse()
                .map_err(|_| self.error("Expecting value", start))?;
            return Ok((PyJson::Float(x), idx));
        }
        let (negative, digits) = match text.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, text),
        };
        if digits.len() > MAX_STR_DIGITS {
            return Err(PyJsonError::IntTooLong {
                digits: digits.len(),
            });
        }
        Ok((PyJson::Int(PyInt::from_ascii_digits(negative, digits)), idx))
    }
}

/// Python dict semantics for repeated keys: the first position, the last value.
fn dedup(entries: Vec<(String, PyJson)>) -> Vec<(String, PyJson)> {
    let mut out: Vec<(String, PyJson)> = Vec::with_capacity(entries.len());
    // Small objects (the usual case) are searched linearly; big ones through a map, so that a
    // hostile object with many keys stays linear.
    let mut index: HashMap<String, usize> = HashMap::new();
    let big = entries.len() > 16;
    for (key, value) in entries {
        let found = if big {
            index.get(&key).copied()
        } else {
            out.iter().position(|(k, _)| *k == key)
        };
        match found {
            Some(i) => out[i].1 = value,
            None => {
                if big {
                    index.insert(key.clone(), out.len());
                }
                out.push((key, value));
            }
        }
    }
    out
}
