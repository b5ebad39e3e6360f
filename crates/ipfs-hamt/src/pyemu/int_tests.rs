//! `int()`, `str.isdecimal()`, `unicodedata.decimal()` and `repr(str)` against expected values
//! generated with CPython 3.12.1 (`test_vectors_int.rs`, from `gen_test_vectors.py`).

use std::cmp::Ordering;

use proptest::prelude::*;

use super::int::{is_space, MAX_STR_DIGITS};
use super::repr::is_printable;
use super::{decimal_value, is_decimal, parse_int, repr_str, PyInt, UNICODE_VERSION};

include!("test_vectors_int.rs");

fn expand(segs: &[(&str, usize)]) -> String {
    segs.iter().map(|(text, n)| text.repeat(*n)).collect()
}

#[test]
fn parse_int_matches_python() {
    for (input, expected) in PARSE_INT_CASES {
        let got = parse_int(input).map(|i| i.to_string());
        assert_eq!(
            got,
            expected.map(str::to_owned).map_err(str::to_owned),
            "input {input:?}"
        );
    }
}

#[test]
fn parse_int_long_inputs_match_python() {
    for (segs, expected) in LONG_PARSE_INT_CASES {
        let input = expand(segs);
        let got = parse_int(&input).map(|i| i.to_string());
        let expected = expected.map(expand).map_err(expand);
        assert_eq!(got, expected, "input {segs:?}");
    }
}

#[test]
fn repr_str_matches_python() {
    for (input, expected) in REPR_CASES {
        assert_eq!(repr_str(input), *expected, "input {input:?}");
    }
}

#[test]
fn is_decimal_matches_python() {
    for (input, expected) in IS_DECIMAL_CASES {
        assert_eq!(is_decimal(input), *expected, "input {input:?}");
    }
}

#[test]
fn decimal_table_spot_checks() {
    assert_eq!(UNICODE_VERSION, "15.0.0");
    // unicodedata 15.0.0 has 680 Nd characters (68 runs of ten).
    let all: Vec<char> = (0..=0x10ffff)
        .filter_map(char::from_u32)
        .filter(|&c| decimal_value(c).is_some())
        .collect();
    assert_eq!(all.len(), 680);
    for (c, value) in [
        ('0', Some(0)),
        ('9', Some(9)),
        ('/', None),
        (':', None),
        ('\u{0660}', Some(0)),
        ('\u{0669}', Some(9)),
        ('\u{066a}', None),
        ('\u{ff15}', Some(5)),
        ('\u{1d7ce}', Some(0)),
        ('\u{1d7d7}', Some(9)),
        ('\u{1d7d8}', Some(0)),
        ('\u{1d7ff}', Some(9)),
        ('\u{1fbf0}', Some(0)),
        ('\u{1fbf9}', Some(9)),
        ('\u{1fbfa}', None),
        ('\u{00b2}', None),
        ('\u{2460}', None),
        ('\u{10ffff}', None),
    ] {
        assert_eq!(decimal_value(c), value, "{c:?}");
    }
}

#[test]
fn whitespace_and_printable_spot_checks() {
    for c in [
        ' ', '\t', '\n', '\x0b', '\x0c', '\r', '\x1c', '\x1f', '\u{85}', '\u{a0}', '\u{2028}',
        '\u{3000}',
    ] {
        assert!(is_space(c), "{c:?}");
    }
    for c in ['a', '\0', '\u{200b}', '\u{180e}', '\u{feff}'] {
        assert!(!is_space(c), "{c:?}");
    }
    for c in [
        ' ',
        '~',
        '\u{a1}',
        '\u{e9}',
        '\u{4e2d}',
        '\u{1f600}',
        '\u{fffd}',
    ] {
        assert!(is_printable(c), "{c:?}");
    }
    for c in [
        '\0',
        '\x7f',
        '\u{80}',
        '\u{a0}',
        '\u{ad}',
        '\u{378}',
        '\u{2028}',
        '\u{e000}',
        '\u{e0001}',
        '\u{10ffff}',
    ] {
        assert!(!is_printable(c), "{c:?}");
    }
}

#[test]
fn pyint_conversions_and_bounds() {
    let big = parse_int("123456789012345678901234567890").expect("valid");
    assert_eq!(big.to_i64(), None);
    assert_eq!(big.to_u64(), None);
    assert_eq!(big.to_i128(), Some(123456789012345678901234567890));
    assert_eq!(
        format!("Chunk coordinate {big} at dimension 0 is out of bounds for dimension size 4."),
        "Chunk coordinate 123456789012345678901234567890 at dimension 0 is out of bounds for dimension size 4."
    );
    for v in [i64::MIN, -1, 0, 1, i64::MAX] {
        let p = parse_int(&v.to_string()).expect("valid");
        assert_eq!(p.to_i64(), Some(v));
        assert_eq!(p, PyInt::from(v));
        assert_eq!(p.is_negative(), v < 0);
        assert_eq!(p.is_zero(), v == 0);
    }
    assert_eq!(PyInt::from(u64::MAX).to_u64(), Some(u64::MAX));
    assert_eq!(PyInt::from(u64::MAX).to_i64(), None);
    assert_eq!(PyInt::from(-1).to_u64(), None);
    assert_eq!(PyInt::from(-1).to_usize(), None);
    assert_eq!(PyInt::from(i128::MIN).to_i128(), Some(i128::MIN));
    assert_eq!(PyInt::from(u128::MAX).to_i128(), None);
    assert_eq!(parse_int("-0").map(|p| p.is_negative()), Ok(false));
    assert_eq!(PyInt::zero().magnitude_digits(), "0");
    assert_eq!(
        parse_int("-00120").map(|p| p.magnitude_digits().to_owned()),
        Ok("120".to_owned())
    );
    assert_eq!(PyInt::from(3).to_f64(), Some(3.0));
    assert_eq!(parse_int(&"9".repeat(400)).map(|p| p.to_f64()), Ok(None));
    assert_eq!(
        parse_int(&"1".repeat(MAX_STR_DIGITS)).map(|p| p.magnitude_digits().len()),
        Ok(4300)
    );
}

#[test]
fn pyint_ordering() {
    let sorted: Vec<PyInt> = [
        "-1000000000000000000000",
        "-20",
        "-3",
        "0",
        "2",
        "10",
        "99999999999999999999999",
    ]
    .iter()
    .map(|s| parse_int(s).expect("valid"))
    .collect();
    for (i, a) in sorted.iter().enumerate() {
        for (j, b) in sorted.iter().enumerate() {
            assert_eq!(a.cmp(b), i.cmp(&j), "{a} vs {b}");
        }
    }
    assert_eq!(
        PyInt::from(5).partial_cmp(&PyInt::from(5)),
        Some(Ordering::Equal)
    );
}

proptest! {
    #[test]
    fn parse_int_agrees_with_i128(v in any::<i128>(), pad in "[ \t]{0,2}") {
        let text = format!("{pad}{v}{pad}");
        let parsed = parse_int(&text);
        prop_assert_eq!(parsed.as_ref().ok().and_then(PyInt::to_i128), Some(v));
        prop_assert_eq!(parsed.map(|p| p.to_string()), Ok(v.to_string()));
    }

    #[test]
    fn pyint_order_agrees_with_i128(a in any::<i128>(), b in any::<i128>()) {
        prop_assert_eq!(PyInt::from(a).cmp(&PyInt::from(b)), a.cmp(&b));
    }

    #[test]
    fn parse_int_and_repr_never_panic(s in "\\PC{0,12}|[-+_ 0-9\u{660}-\u{669}\u{3000}\0]{0,12}") {
        match parse_int(&s) {
            Ok(v) => prop_assert!(is_decimal(v.magnitude_digits())),
            Err(msg) => prop_assert!(msg.starts_with("invalid literal for int() with base 10: ")),
        }
        let repr = repr_str(&s);
        prop_assert!(repr.starts_with(['\'', '"']) && repr.len() >= 2);
    }
}
