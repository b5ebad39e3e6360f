//! Large differential checks against CPython, ignored by default because they read vectors
//! from disk: `python gen_test_vectors.py diff DIR` writes them (CPython 3.12.1), then
//! `PYEMU_DIFF_DIR=DIR cargo test -p ipfs-hamt --lib pyemu -- --ignored` compares.

use std::path::PathBuf;

use super::int::is_space;
use super::{decimal_value, dumps, is_decimal, loads, parse_int, repr_str, PyJson, PyJsonError};

fn vectors(name: &str) -> String {
    let dir =
        std::env::var_os("PYEMU_DIFF_DIR").expect("set PYEMU_DIFF_DIR to the vectors' directory");
    std::fs::read_to_string(PathBuf::from(dir).join(name)).expect("vectors file")
}

fn jsonl(name: &str) -> Vec<serde_json::Value> {
    vectors(name)
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl line"))
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
#[ignore = "needs PYEMU_DIFF_DIR vectors generated with CPython"]
fn loads_differential() {
    let mut skipped = 0;
    for case in jsonl("loads.jsonl") {
        let input = unhex(case["in"].as_str().expect("in"));
        let got = loads(&input);
        match (&got, case["out"].as_str()) {
            (Ok(v), Some(out)) => assert_eq!(dumps(v), out, "{input:?}"),
            // Python decodes these as UTF-16/32 and may raise anything; a lone surrogate must
            // never hide an error Python raises.
            (Err(PyJsonError::UnsupportedEncoding { .. }), None) => skipped += 1,
            (Err(e), None) => {
                assert_eq!(e.python_exception(), case["exc"].as_str(), "{input:?}");
                assert_eq!(
                    Some(e.to_string().as_str()),
                    case["msg"].as_str(),
                    "{input:?}"
                );
            }
            // Only lone surrogates and UTF-16/32 may fail where Python succeeds.
            (Err(e), Some(_)) => {
                assert!(e.python_exception().is_none(), "{input:?}: {e}");
                skipped += 1;
            }
            (Ok(v), None) => panic!("{input:?} gave {v:?}, Python raised {case}"),
        }
    }
    eprintln!("{skipped} documented deviations");
}

#[test]
#[ignore = "needs PYEMU_DIFF_DIR vectors generated with CPython"]
fn float_differential() {
    for line in vectors("floats.txt").lines() {
        let (bits, expected) = line.split_once(' ').expect("line");
        let bits = u64::from_str_radix(bits, 16).expect("bits");
        assert_eq!(
            dumps(&PyJson::Float(f64::from_bits(bits))),
            expected,
            "{bits:#x}"
        );
    }
}

#[test]
#[ignore = "needs PYEMU_DIFF_DIR vectors generated with CPython"]
fn int_differential() {
    for case in jsonl("ints.jsonl") {
        let input = case["in"].as_str().expect("in");
        let got = parse_int(input).map(|v| v.to_string());
        let expected = match case["ok"].as_str() {
            Some(ok) => Ok(ok.to_owned()),
            None => Err(case["err"].as_str().expect("err").to_owned()),
        };
        assert_eq!(got, expected, "{input:?}");
        assert_eq!(Some(is_decimal(input)), case["dec"].as_bool(), "{input:?}");
        assert_eq!(
            Some(repr_str(input).as_str()),
            case["repr"].as_str(),
            "{input:?}"
        );
    }
}

#[test]
#[ignore = "needs PYEMU_DIFF_DIR vectors generated with CPython"]
fn every_code_point_differential() {
    for case in jsonl("reprs.jsonl") {
        let c = case[0]
            .as_u64()
            .and_then(|c| char::from_u32(c as u32))
            .expect("code point");
        assert_eq!(
            Some(repr_str(&c.to_string()).as_str()),
            case[1].as_str(),
            "{c:?}"
        );
        assert_eq!(Some(decimal_value(c).is_some()), case[2].as_bool(), "{c:?}");
        assert_eq!(Some(is_space(c)), case[3].as_bool(), "{c:?}");
    }
}
