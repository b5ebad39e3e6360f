//! Python's `int`: `int(str)` in base 10, `str.isdecimal()`, `unicodedata.decimal()` and an
//! arbitrary-precision integer value ([`PyInt`]) as `json.loads` and `int()` produce it.
//!
//! py-hamt's sharded store parses chunk coordinates with `part.isdecimal()` then `int(part)`,
//! and reports out-of-range coordinates with `str(int)`, so the value must keep any magnitude a
//! hostile key can spell (up to CPython's 4300-digit conversion limit).

use std::cmp::Ordering;
use std::fmt;

use super::repr::repr_str;
use super::tables::{ND_ZEROS, UNICODE_SPACES};

/// CPython's default `sys.get_int_max_str_digits()`: `int()` refuses longer decimal strings.
pub const MAX_STR_DIGITS: usize = 4300;

/// An integer of any size (within CPython's 4300-digit string limit), as Python's `int`.
///
/// Stored as sign and decimal magnitude without leading zeros, so the derived equality and
/// hashing are value equality; zero is never negative.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PyInt {
    negative: bool,
    /// ASCII decimal digits, no leading zeros ("0" for zero).
    digits: String,
}

impl PyInt {
    /// Builds from ASCII decimal digits (leading zeros allowed) and a sign. Callers guarantee
    /// `digits` is non-empty ASCII `0`-`9`.
    pub(crate) fn from_ascii_digits(negative: bool, digits: &str) -> PyInt {
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            PyInt {
                negative: false,
                digits: "0".to_owned(),
            }
        } else {
            PyInt {
                negative,
                digits: trimmed.to_owned(),
            }
        }
    }

    /// Zero.
    pub fn zero() -> PyInt {
        PyInt {
            negative: false,
            digits: "0".to_owned(),
        }
    }

    /// True for values below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// True for zero.
    pub fn is_zero(&self) -> bool {
        self.digits == "0"
    }

    /// The decimal digits of the absolute value, without sign or leading zeros.
    pub fn magnitude_digits(&self) -> &str {
        &self.digits
    }

    /// The value as `i128` if it fits.
    pub fn to_i128(&self) -> Option<i128> {
        // 39 digits hold i128::MAX; longer magnitudes cannot fit, and parsing them would fail
        // anyway, this just skips the work for hostile lengths.
        if self.digits.len() > 39 {
            return None;
        }
        let magnitude: u128 = self.digits.parse().ok()?;
        if self.negative {
            0i128.checked_sub_unsigned(magnitude)
        } else {
            i128::try_from(magnitude).ok()
        }
    }

    /// The value as `i64` if it fits.
    pub fn to_i64(&self) -> Option<i64> {
        self.to_i128().and_then(|v| i64::try_from(v).ok())
    }

    /// The value as `u64` if it fits (never for negative values).
    pub fn to_u64(&self) -> Option<u64> {
        self.to_i128().and_then(|v| u64::try_from(v).ok())
    }

    /// The value as `usize` if it fits (never for negative values).
    pub fn to_usize(&self) -> Option<usize> {
        self.to_i128().and_then(|v| usize::try_from(v).ok())
    }

    /// Python's `int(x)` for a float: truncates toward zero, exactly (`int(1e300)` has all 301
    /// digits of the binary value). `None` for NaN and infinities, where Python raises.
    pub fn from_f64_trunc(x: f64) -> Option<PyInt> {
        if !x.is_finite() {
            return None;
        }
        let t = x.trunc();
        if t.abs() < 9.007_199_254_740_992e15 {
            // Below 2**53 the value is an exact i64.
            return Some(PyInt::from(t as i64));
        }
        // |t| = mantissa * 2**exp with exp > 0: multiply out in base-1e9 limbs (little endian).
        let bits = t.abs().to_bits();
        let mut exp = ((bits >> 52) & 0x7ff) as i64 - 1075;
        let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
        let mut limbs: Vec<u64> = vec![mantissa % 1_000_000_000, mantissa / 1_000_000_000];
        while exp > 0 {
            // 2**29 * 1e9 < 2**64, so a limb times the shift plus carry cannot overflow.
            let shift = exp.min(29);
            exp -= shift;
            let mut carry = 0u64;
            for limb in limbs.iter_mut() {
                let v = (*limb << shift) + carry;
                *limb = v % 1_000_000_000;
                carry = v / 1_000_000_000;
            }
            while carry > 0 {
                limbs.push(carry % 1_000_000_000);
                carry /= 1_000_000_000;
            }
        }
        let mut digits = String::new();
        for (i, limb) in limbs.iter().rev().enumerate() {
            if i == 0 {
                digits.push_str(&limb.to_string());
            } else {
                digits.push_str(&format!("{limb:09}"));
            }
        }
        Some(PyInt::from_ascii_digits(t < 0.0, &digits))
    }

    /// Python's `float(int)`: correctly rounded; `None` where Python raises `OverflowError`
    /// ("int too large to convert to float").
    pub fn to_f64(&self) -> Option<f64> {
        let v: f64 = self.to_string().parse().ok()?;
        v.is_finite().then_some(v)
    }
}

impl fmt::Display for PyInt {
    /// Python's `str(int)` / `repr(int)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        f.write_str(&self.digits)
    }
}

impl Ord for PyInt {
    fn cmp(&self, other: &Self) -> Ordering {
        let magnitude = || {
            self.digits
                .len()
                .cmp(&other.digits.len())
                .then_with(|| self.digits.cmp(&other.digits))
        };
        match (self.negative, other.negative) {
            (false, false) => magnitude(),
            (true, true) => magnitude().reverse(),
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
        }
    }
}

impl PartialOrd for PyInt {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

macro_rules! from_primitive {
    ($($t:ty),*) => {$(
        impl From<$t> for PyInt {
            fn from(v: $t) -> PyInt {
                let s = v.to_string();
                match s.strip_prefix('-') {
                    Some(magnitude) => PyInt::from_ascii_digits(true, magnitude),
                    None => PyInt::from_ascii_digits(false, &s),
                }
            }
        }
    )*};
}
from_primitive!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

/// `unicodedata.decimal(c)`: the digit value of a Unicode `Nd` character.
pub fn decimal_value(c: char) -> Option<u32> {
    let cp = u32::from(c);
    // The table holds the zero of each ten-digit run; find the last zero at or below `cp`.
    let run = ND_ZEROS.partition_point(|&zero| zero <= cp);
    let zero = *ND_ZEROS.get(run.checked_sub(1)?)?;
    let value = cp - zero;
    (value < 10).then_some(value)
}

/// `str.isdecimal()`: non-empty and every character is a Unicode decimal digit (`Nd`).
pub fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| decimal_value(c).is_some())
}

/// `str.isspace()` for one character (what `str.strip()` removes).
pub fn is_space(c: char) -> bool {
    if c.is_ascii() {
        matches!(
            c,
            ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f'
        )
    } else {
        UNICODE_SPACES.binary_search(&u32::from(c)).is_ok()
    }
}

/// Python `int(s)` (base 10). `Err` holds the exact `ValueError` message Python would raise.
///
/// CPython maps every non-ASCII whitespace to a space and every non-ASCII decimal digit to its
/// ASCII digit, then parses the result as a C string: optional leading/trailing whitespace (of
/// ASCII only ` \t\n\v\f\r`, so `\x1c`-`\x1f` are rejected although `str.isspace()` accepts them),
/// one sign, digits with single underscores between them. Strings of more than 4300 digits
/// raise the conversion-limit error, but only if the text is otherwise valid; a NUL ends the C
/// string, so text after one is rejected only after that limit check.
pub fn parse_int(s: &str) -> Result<PyInt, String> {
    let invalid = || {
        let repr: String = repr_str(s).chars().take(200).collect();
        format!("invalid literal for int() with base 10: {repr}")
    };
    let mut ascii = Vec::with_capacity(s.len());
    let mut has_nul = false;
    for c in s.chars() {
        let b = if c == '\0' {
            has_nul = true;
            break;
        } else if c.is_ascii() {
            c as u8
        } else if is_space(c) {
            b' '
        } else if let Some(d) = decimal_value(c) {
            b'0' + d as u8
        } else {
            // Anything else is invalid; CPython substitutes '?' for the same effect.
            b'?'
        };
        ascii.push(b);
    }
    let c_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let mut rest = &ascii[..];
    while rest.first().is_some_and(c_space) {
        rest = &rest[1..];
    }
    let negative = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    let mut digits = String::new();
    let mut prev_underscore = true; // no underscore right after the sign or at the start
    let mut consumed = 0;
    for &b in rest {
        match b {
            b'0'..=b'9' => {
                digits.push(char::from(b));
                prev_underscore = false;
            }
            b'_' if !prev_underscore => prev_underscore = true,
            b'_' => return Err(invalid()),
            _ => break,
        }
        consumed += 1;
    }
    if digits.is_empty() || prev_underscore {
        return Err(invalid());
    }
    if !rest[consumed..].iter().all(c_space) {
        return Err(invalid());
    }
    if digits.len() > MAX_STR_DIGITS {
        return Err(int_limit_message(digits.len()));
    }
    if has_nul {
        return Err(invalid());
    }
    Ok(PyInt::from_ascii_digits(negative, &digits))
}

/// CPython's `ValueError` text for a decimal string over the 4300-digit limit.
pub(crate) fn int_limit_message(digits: usize) -> String {
    format!(
        "Exceeds the limit ({MAX_STR_DIGITS} digits) for integer string conversion: value has \
         {digits} digits; use sys.set_int_max_str_digits() to increase the limit"
    )
}
