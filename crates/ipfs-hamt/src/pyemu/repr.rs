//! Python's `repr()` for `str` and `float`, as CPython 3.12 prints them.

use std::fmt::Write;

use super::tables::NON_PRINTABLE;

/// `str.isprintable()` for one character: everything but categories `C*` and `Z*`, except
/// that the ASCII space is printable.
pub fn is_printable(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let cp = u32::from(c);
    // Ranges are sorted and disjoint: find the last range starting at or below `cp`.
    let i = NON_PRINTABLE.partition_point(|&(start, _)| start <= cp);
    match i.checked_sub(1).and_then(|i| NON_PRINTABLE.get(i)) {
        Some(&(_, end)) => cp > end,
        None => true,
    }
}

/// Python `repr(s)` for a `str`.
///
/// Quotes with `'` unless the text contains `'` but no `"`; escapes the chosen quote and `\`,
/// writes `\t` `\n` `\r`, other ASCII controls and DEL as `\xNN`, and non-printable non-ASCII
/// characters as `\xNN`, `\uNNNN` or `\UNNNNNNNN` (lowercase hex), as CPython's `unicode_repr`.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            _ if c == quote || c == '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ if is_printable(c) => out.push(c),
            _ => {
                // Writing to a String cannot fail.
                let cp = u32::from(c);
                let _ = if cp <= 0xff {
                    write!(out, "\\x{cp:02x}")
                } else if cp <= 0xffff {
                    write!(out, "\\u{cp:04x}")
                } else {
                    write!(out, "\\U{cp:08x}")
                };
            }
        }
    }
    out.push(quote);
    out
}

/// Python `repr(x)` for a `float` (`float.__repr__`): the shortest digits that round-trip, in
/// fixed notation when the decimal exponent is in -4..16 (with `.0` for integral values), else
/// as `d.ddde+XX` with at least two exponent digits; `nan`, `inf`, `-inf`.
pub fn repr_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Rust's `{:e}` prints the shortest round-tripping digits: "1.2345e-7", "0e0", "1e16".
    // CPython's dtoa (mode 0) picks, among the shortest, the one nearest the exact binary
    // value with ties to an even last digit, where Rust rounds ties up (777029093064219.25
    // is "777029093064219.2" in Python, "…219.3" from `{:e}`). So also round the exact
    // value to that many digits (Rust's precision formatting is exact, ties to even) and
    // prefer it whenever it round-trips.
    let shortest = format!("{:e}", x.abs());
    let significant = shortest
        .split_once('e')
        .map_or(1, |(m, _)| m.len() - m.contains('.') as usize);
    let nearest = format!("{:.*e}", significant.saturating_sub(1), x.abs());
    let sci = if nearest != shortest && nearest.parse::<f64>() == Ok(x.abs()) {
        nearest
    } else {
        shortest
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::new();
    if x.is_sign_negative() {
        out.push('-');
    }
    // Python's `decpt`: the value is 0.DIGITS * 10**decpt.
    let decpt = exp + 1;
    let n = digits.len() as i32;
    if (-3..=16).contains(&decpt) {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(&digits);
        } else if decpt >= n {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (decpt - n) as usize));
            out.push_str(".0");
        } else {
            let (int_part, frac) = digits.split_at(decpt as usize);
            out.push_str(int_part);
            out.push('.');
            out.push_str(frac);
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.abs());
    }
    out
}
