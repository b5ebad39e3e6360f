//! `json` emulation against expected values generated with CPython 3.12.1
//! (`test_vectors_json.rs`, from `gen_test_vectors.py`), plus property tests.

use proptest::prelude::*;

use super::json::{
    dumps, dumps_indent2, loads, loads_str, loads_utf8, PyJson, PyJsonError, MAX_DEPTH,
};
use super::{repr_float, PyInt};

include!("test_vectors_json.rs");

fn expand_bytes(segs: &[(&[u8], usize)]) -> Vec<u8> {
    segs.iter().flat_map(|(text, n)| text.repeat(*n)).collect()
}

fn expand(segs: &[(&str, usize)]) -> String {
    segs.iter().map(|(text, n)| text.repeat(*n)).collect()
}

fn outcome(input: &[u8]) -> Result<String, (String, String)> {
    describe(loads(input))
}

fn describe(result: Result<PyJson, PyJsonError>) -> Result<String, (String, String)> {
    result.map(|v| dumps(&v)).map_err(|e| {
        let kind = e.python_exception().unwrap_or("(no Python exception)");
        (kind.to_owned(), e.to_string())
    })
}

#[test]
fn loads_matches_python() {
    for (input, expected) in LOADS_CASES {
        let expected = expected
            .map(str::to_owned)
            .map_err(|(k, m)| (k.to_owned(), m.to_owned()));
        assert_eq!(
            outcome(input),
            expected,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn loads_utf8_matches_python() {
    for (input, expected) in LOADS_UTF8_CASES {
        let expected = expected
            .map(str::to_owned)
            .map_err(|(k, m)| (k.to_owned(), m.to_owned()));
        assert_eq!(describe(loads_utf8(input)), expected, "input {input:?}");
    }
}

#[test]
fn to_py_int_matches_python() {
    for (input, expected) in TO_INT_CASES {
        let v = loads(input).expect("vector parses");
        let got = v
            .to_py_int()
            .map(|i| i.to_string())
            .map_err(|(k, m)| (k.to_owned(), m));
        let expected = expected
            .map(str::to_owned)
            .map_err(|(k, m)| (k.to_owned(), m.to_owned()));
        assert_eq!(got, expected, "input {:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn loads_long_inputs_match_python() {
    for (segs, expected) in LONG_LOADS_CASES {
        let input = expand_bytes(segs);
        let expected = match expected {
            Ok(out) => Ok(expand(out)),
            Err((kind, msg)) => Err(((*kind).to_owned(), expand(msg))),
        };
        assert_eq!(
            outcome(&input),
            expected,
            "input starting {:?}",
            &input[..20]
        );
    }
}

#[test]
fn dumps_floats_match_python() {
    for &(bits, expected) in FLOAT_CASES {
        let x = f64::from_bits(bits);
        assert_eq!(dumps(&PyJson::Float(x)), expected, "bits {bits:#x}");
        if x.is_finite() {
            assert_eq!(repr_float(x), expected);
            // Python's repr round-trips, and so does loads.
            match loads(expected.as_bytes()) {
                Ok(PyJson::Float(y)) => assert_eq!(y.to_bits(), bits),
                other => panic!("{expected} loaded as {other:?}"),
            }
        }
    }
    assert_eq!(repr_float(f64::NAN), "nan");
    assert_eq!(repr_float(f64::NEG_INFINITY), "-inf");
    assert_eq!(repr_float(f64::INFINITY), "inf");
}

#[test]
fn dumps_strings_match_python() {
    for (s, expected) in STR_CASES {
        assert_eq!(dumps(&PyJson::from(*s)), *expected);
    }
}

#[test]
fn dumps_indent2_matches_python() {
    for (input, expected) in INDENT_CASES {
        let v = loads(input).expect("vector parses");
        assert_eq!(dumps_indent2(&v), *expected);
    }
    let deep =
        loads(&[&[b'['; MAX_DEPTH][..], &[b']'; MAX_DEPTH][..]].concat()).expect("max depth");
    assert_eq!(dumps_indent2(&deep).lines().count(), 2 * MAX_DEPTH - 1);
}

#[test]
fn value_types_follow_python() {
    let v = loads(b"[1, 1.0, -0, -0.0, 1e2, 123456789012345678901234567890]").expect("parses");
    let items = v.as_array().expect("list");
    assert_eq!(items[0], PyJson::Int(PyInt::from(1)));
    assert_eq!(items[1], PyJson::Float(1.0));
    assert_eq!(items[2].as_int().map(PyInt::is_negative), Some(false));
    assert!(items[3]
        .as_f64()
        .is_some_and(|x| x == 0.0 && x.is_sign_negative()));
    assert_eq!(items[4].as_f64(), Some(100.0));
    assert_eq!(
        items[5].as_int().map(|i| i.to_string()).as_deref(),
        Some("123456789012345678901234567890")
    );
    assert_eq!(items[5].as_int().and_then(PyInt::to_i64), None);
    assert_eq!(PyJson::Bool(true).type_name(), "bool");
}

#[test]
fn duplicate_keys_keep_first_position_last_value() {
    // More than 16 keys takes the hashed path.
    let mut doc = String::from("{");
    for i in 0..40 {
        doc.push_str(&format!("\"k{}\": {i}, ", i % 20));
    }
    doc.push_str("\"k0\": \"last\"}");
    let v = loads(doc.as_bytes()).expect("parses");
    let entries = v.as_object().expect("dict");
    assert_eq!(entries.len(), 20);
    assert_eq!(entries[0], ("k0".to_owned(), PyJson::from("last")));
    assert_eq!(entries[19], ("k19".to_owned(), PyJson::from(39i64)));
}

#[test]
fn loads_str_rejects_bom_like_python() {
    // json.loads('\ufeff{"a":1}') raises; json.loads(b'\xef\xbb\xbf{"a":1}') does not.
    let err = loads_str("\u{feff}{\"a\":1}").expect_err("BOM");
    assert_eq!(
        err.to_string(),
        "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)"
    );
    assert_eq!(
        loads_str("{\"a\":1}").map(|v| dumps(&v)),
        Ok("{\"a\": 1}".to_owned())
    );
}

#[test]
fn deviations_are_reported_not_mangled() {
    // Python: '\ud800x' (a lone surrogate); a Rust String cannot hold it.
    let e = loads(b"[\"\\ud800x\"]").expect_err("lone surrogate");
    assert!(
        matches!(e, PyJsonError::LoneSurrogate { pos: 2, .. }),
        "{e:?}"
    );
    assert_eq!(e.python_exception(), None);
    // Python: '\udc00', and via surrogatepass, '\ud800' from encoded bytes.
    assert!(matches!(
        loads(b"\"\\udc00\""),
        Err(PyJsonError::LoneSurrogate { pos: 1, .. })
    ));
    assert!(matches!(
        loads(b"\"a\xed\xa0\x80\""),
        Err(PyJsonError::LoneSurrogate { pos: 2, .. })
    ));
    // A high surrogate then a non-low escape: Python keeps both characters.
    assert!(matches!(
        loads(b"\"\\ud800\\u0041\""),
        Err(PyJsonError::LoneSurrogate { .. })
    ));
    // Any error Python raises wins over the surrogate.
    assert_eq!(
        loads(b"\"\\ud800\" x").map_err(|e| e.to_string()),
        Err("Extra data: line 1 column 10 (char 9)".to_owned())
    );
    // Python decodes these as UTF-16/32 (json.detect_encoding); we refuse.
    for (input, encoding) in [
        (&b"1\x00"[..], "utf-16-le"),
        (b"\x001", "utf-16-be"),
        (b"\x00\x00\x001", "utf-32-be"),
        (b"1\x00\x00\x00", "utf-32-le"),
        (b"\xff\xfe1\x00", "utf-16"),
        (b"\xff\xfe\x00\x00", "utf-32"),
    ] {
        assert_eq!(
            loads(input),
            Err(PyJsonError::UnsupportedEncoding { encoding })
        );
    }
}

#[test]
fn hostile_nesting_fails_cleanly() {
    let deep = vec![b'['; 1_000_000];
    assert_eq!(loads(&deep), Err(PyJsonError::TooDeep { object: false }));
    let deep = "{\"a\":".repeat(100_000);
    assert_eq!(
        loads(deep.as_bytes()),
        Err(PyJsonError::TooDeep { object: true })
    );
}

#[test]
fn accessors_behave_like_dict_methods() {
    let mut v = loads(b"{\"a\": 1, \"b\": {\"c\": [true]}, \"d\": null}").expect("parses");
    assert_eq!(
        v.get("b")
            .and_then(|b| b.get("c"))
            .and_then(PyJson::as_array)
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(v.get("zz"), None);
    assert_eq!(v.remove("a"), Some(PyJson::from(1i64)));
    assert_eq!(v.remove("a"), None);
    assert_eq!(v.insert("d", PyJson::from("x")), Some(PyJson::Null));
    assert_eq!(v.insert("e", PyJson::from(2.5)), None);
    if let Some(c) = v
        .get_mut("b")
        .and_then(|b| b.get_mut("c"))
        .and_then(PyJson::as_array_mut)
    {
        c.push(PyJson::Null);
    }
    assert_eq!(
        dumps(&v),
        "{\"b\": {\"c\": [true, null]}, \"d\": \"x\", \"e\": 2.5}"
    );
    assert_eq!(PyJson::Null.get("a"), None);
    assert_eq!(PyJson::from("s").as_str(), Some("s"));
    assert!(PyJson::Null.is_null());
}

fn arb_json() -> impl Strategy<Value = PyJson> {
    let leaf = prop_oneof![
        Just(PyJson::Null),
        any::<bool>().prop_map(PyJson::Bool),
        any::<i64>().prop_map(PyJson::from),
        "-?[1-9][0-9]{0,60}".prop_map(|s| PyJson::Int(super::parse_int(&s).expect("digits"))),
        any::<f64>().prop_map(PyJson::Float),
        any::<String>().prop_map(PyJson::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(PyJson::Array),
            prop::collection::vec((any::<String>(), inner), 0..6).prop_map(|entries| {
                // A dict has unique keys; keep the first of each, as loads would place it.
                let mut out: Vec<(String, PyJson)> = Vec::new();
                for (k, v) in entries {
                    if !out.iter().any(|(seen, _)| *seen == k) {
                        out.push((k, v));
                    }
                }
                PyJson::Object(out)
            }),
        ]
    })
}

/// Equality that treats NaN as equal to NaN (and keeps -0.0 apart from 0.0).
fn same(a: &PyJson, b: &PyJson) -> bool {
    match (a, b) {
        (PyJson::Float(x), PyJson::Float(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        (PyJson::Array(x), PyJson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (PyJson::Object(x), PyJson::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        _ => a == b,
    }
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, byte, kind) in edits {
        let at = if bytes.is_empty() {
            0
        } else {
            at % bytes.len()
        };
        match kind % 3 {
            0 if !bytes.is_empty() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ if !bytes.is_empty() => {
                bytes.remove(at);
            }
            _ => bytes.push(byte),
        }
    }
    bytes
}

proptest! {
    #[test]
    fn dumps_then_loads_round_trips(v in arb_json()) {
        for text in [dumps(&v), dumps_indent2(&v)] {
            prop_assert!(text.is_ascii(), "ensure_ascii output: {}", text);
            let back = loads(text.as_bytes());
            prop_assert!(back.as_ref().is_ok_and(|b| same(b, &v)), "{} -> {:?}", text, back);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = loads(&bytes);
        let _ = loads_str(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_json_never_panics(
        v in arb_json(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let mutated = mutate(dumps(&v).into_bytes(), &edits);
        if let Ok(back) = loads(&mutated) {
            // Whatever Python would accept must dump again without trouble.
            let _ = dumps(&back);
        }
        // Python-relevant bytes only: JSON syntax characters, digits, escapes.
        let alphabet = b"[]{}\",:\\u0123456789abcdefeE.+-ntrfalsNIy \n\t";
        let syntax: Vec<u8> = edits.iter().map(|&(at, _, _)| alphabet[at % alphabet.len()]).collect();
        let _ = loads(&mutate(dumps(&v).into_bytes(), &syntax.iter().map(|&b| (b as usize, b, 1)).collect::<Vec<_>>()));
    }
}
