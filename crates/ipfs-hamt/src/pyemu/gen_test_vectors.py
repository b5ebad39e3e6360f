"""Print the Python-generated expected values that json_tests.rs and int_tests.rs include.

    $(pyenv root)/versions/3.12.1/bin/python gen_test_vectors.py json > test_vectors_json.rs
    $(pyenv root)/versions/3.12.1/bin/python gen_test_vectors.py int > test_vectors_int.rs

Kept so the vectors can be regenerated or extended; the Rust tests never run Python.
"""

import json
import random
import struct
import sys


def rs_str(s):
    """A Rust string literal for s."""
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.append("\\u{%x}" % ord(c))
    return '"' + "".join(out) + '"'


def rs_bytes(b):
    out = []
    for x in b:
        c = chr(x)
        if c in '"\\':
            out.append("\\" + c)
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.append("\\x%02x" % x)
    return 'b"' + "".join(out) + '"'


def outcome(f, lit=rs_str):
    try:
        return "Ok(%s)" % lit(f())
    except Exception as e:  # noqa: BLE001 - every Python exception is an expected value
        return "Err((%s, %s))" % (rs_str(type(e).__name__), lit(str(e)))


def rle(s, lit):
    """Run-length segments [(text, repeat)] as a Rust slice literal, for long values."""
    segs = []
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        if j - i >= 8:
            segs.append((s[i:i + 1], j - i))
        elif segs and segs[-1][1] == 1:
            segs[-1] = (segs[-1][0] + s[i:j], 1)
        else:
            segs.append((s[i:j], 1))
        i = j
    return "&[" + ", ".join("(%s, %d)" % (lit(t), n) for t, n in segs) + "]"


def long_str(s):
    return rle(s, rs_str)


def long_bytes(b):
    return rle(b, rs_bytes)


LOADS = [
    b'{"a": 1, "b": [true, false, null], "c": "x"}', b"  [1, 2.5, -3]\r\n\t", b"-0", b"-0.0",
    b"0", b"1E5", b"1e-5", b"1.5e+300", b"1e400", b"-1e400", b"2.5E-400", b"123456789012345678901234567890",
    b"-98765432109876543210", b"1.0", b"0.1", b"3.141592653589793", b"NaN", b"Infinity", b"-Infinity",
    b"[NaN, -Infinity, Infinity]", b'{"a":1,"a":2,"b":3,"a":4}', b'"\\ud83d\\ude00"', b'"\\u00e9\\u0041"',
    b'"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\u00e9\U0001f600\u4e2d"'.encode(), b"\xef\xbb\xbf{\"a\": 1}",
    b"\xef\xbb\xbf\xef\xbb\xbf1", b'\xef\xbb\xbf["\xff"]', b"[]", b"{}", b"[ ]", b"{ }", b"[[[]]]", b'{"":{"":[{}]}}',
    b'"\\ud800x"'[:0] + b'"\x7f"', b'"\\uD83D\\uDE00"', b"1 ", b" \n 1", b"",
    b" ", b"nan", b"-NaN", b"+1", b"01", b"-01", b"1.", b".5", b"1e", b"1e+", b"1E-x", b"-", b"[-]", b"--1",
    b"tru", b"nul", b"[1,]", b"[1,2", b"[1 2]", b"{\"a\":1,}", b"{\"a\" 1}", b"{1:2}", b"{'a':1}",
    b"{\"a\":1", b"{", b"[", b"\"abc", b"\"abc\\", b"\"a\x01\"", b"\"a\nb\"", b"\"\\x\"", b"\"\\u12\"",
    b"\"\\u12", b"\"\\u0041", b"\"\\u00zz\"", b"\"\\ud83d\\uzzzz\"", b"1 2", b"[1] x", b"\xc2\xa01",
    b"\x0c1", b"\x0b1", b"true false", b"\xff", b"\"\xc3\"", b"\"\xe2\x82", b"\"\xe0\x80\"",
    b"\"\xed\xa0\x41\"", b"\xed\xa0\x80", b"[1,\n 2,\n x]", b"{\"a\":\n\n  [1, }", b"\"\xc3\xa9\" x",
    b'["\xc3\xa9", x]', b"[\"\x00\"] x",
    b'{"a":[1,{"b":null}],"c":{"d":1.5e-07}}', b"1.7976931348623157e308", b"5e-324", b"4.9e-324",
    b"123456789012345.0", b"1e16", b"1e22", b"100.0", b"0.0001", b"0.00001", b"[1,{\"x\":2}]x",
]

LOADS_UTF8 = [
    b'{"a": 1}', b"\xef\xbb\xbf{}", b'"\xed\xa0\x80"', b'["\xc3\xa9", "\\ud83d\\ude00"]', b"\xff", b"[1,\n\xe2\x82",
    b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x9f\x98",
]

TO_INT = [
    b"null", b"[1]", b"{}", b"true", b"false", b'"12"', b'" 1_0 "', b'"x"', b"1.9", b"-1.9", b"-0.5", b"-0.0", b"1e300",
    b"-1.7976931348623157e308", b"9007199254740993.0", b"18446744073709551616.0", b"1e22", b"5e-324", b"NaN", b"Infinity",
    b"-Infinity", b"123", b"-123456789012345678901234567890", b"4503599627370497.5",
]

DUMPS_STRINGS = [
    "", "abc", 'q"b\\s/', "\n\r\t\b\f", "\x00\x01\x1f\x7f\x80", "\u00e9\u4e2d\uffff", "\U0001f600\U0010ffff",
    "\u2028\u2029", "tab\there", "<>&'",
]

INDENT = [
    b'{"a": 1, "b": [1, 2, {"c": []}], "d": {}, "e": {"f": [[]]}}', b"[]", b"{}", b"1.5",
    b'[{"zarr_format": 2, "shape": [10, 20], "fill_value": NaN, "x": "\xc3\xa9"}]',
]


def gen_json():
    print("const LOADS_CASES: &[(&[u8], Outcome<&str>)] = &[")
    for b in LOADS:
        if len(b) <= 200:
            print("    (%s, %s)," % (rs_bytes(b), outcome(lambda: json.dumps(json.loads(b)))))
    print("];")
    print("/// json.loads(input.decode('utf-8')), for loads_utf8.")
    print("const LOADS_UTF8_CASES: &[(&[u8], Outcome<&str>)] = &[")
    for b in LOADS_UTF8:
        print("    (%s, %s)," % (rs_bytes(b), outcome(lambda: json.dumps(json.loads(b.decode("utf-8"))))))
    print("];")
    print("/// int(json.loads(input)), for PyJson::to_py_int.")
    print("const TO_INT_CASES: &[(&[u8], Outcome<&str>)] = &[")
    for b in TO_INT:
        print("    (%s, %s)," % (rs_bytes(b), outcome(lambda: str(int(json.loads(b))))))
    print("];")
    print("const LONG_LOADS_CASES: &[(Segs<&[u8]>, Outcome<Segs>)] = &[")
    for segs in LONG_LOADS:
        b = expand(segs)
        print("    (%s, %s)," % (segs_lit(segs, rs_bytes), outcome(lambda: json.dumps(json.loads(b)), long_str)))
    print("];")
    rnd = random.Random(1234)
    floats = [0.0, -0.0, 1.0, -1.0, 0.1, 0.2 + 0.1, 1e-5, 1e-4, 1.5e-7, 1e16, 1e15, 123456789012345.0,
              1234567890123456.0, 12345678901234567.0, 1e22, 1e23, 100.0, 5e-324, 2.2250738585072014e-308,
              1.7976931348623157e308, float("nan"), float("inf"), float("-inf"), 2.0 ** 53, 2.0 ** 53 + 2,
              9007199254740993.0, 0.3, 2 / 3, -1 / 3, 1e100, 1.25e-100, 299792458.0, 6.02214076e23,
              # exact ties between two shortest candidates: CPython takes the even digit
              777029093064219.25, 1888041279734518.75, 1864998137918247.25, 940917071960521.75]
    floats += [struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(64)))[0] for _ in range(40)]
    floats += [rnd.uniform(-1e6, 1e6) for _ in range(20)] + [rnd.random() * 10 ** rnd.randint(-8, 20) for _ in range(20)]
    print("const FLOAT_CASES: &[(u64, &str)] = &[")
    for f in floats:
        if f != f:
            f = float("nan")
        print("    (0x%016x, %s)," % (struct.unpack("<Q", struct.pack("<d", f))[0], rs_str(json.dumps(f))))
    print("];")
    print("const STR_CASES: &[(&str, &str)] = &[")
    for s in DUMPS_STRINGS:
        print("    (%s, %s)," % (rs_str(s), rs_str(json.dumps(s))))
    print("];")
    print("const INDENT_CASES: &[(&[u8], &str)] = &[")
    for b in INDENT:
        print("    (%s, %s)," % (rs_bytes(b), rs_str(json.dumps(json.loads(b), indent=2))))
    print("];")


INTS = [
    "0", "7", "-7", "+7", "007", "-0", "+0", "00", "1_000", "1_0_0", "_1", "1_", "1__0", "+_1", "-_1", "_",
    "", " ", "  12  ", "\t1\n", "\x0b1\x0c", "\r1\r", "\x1c1", "1\x1f", "\x85 1 \xa0", "\u3000\uff11\uff12\u2003",
    "\u0661\u0662\u0663", "1\u0661", "\u0661_\u0662", "\U0001d7ce\U0001d7cf", "\U0001fbf9", "\u00b9", "\u00bd", "\u066b",
    "\u2212" "1", "--1", "+-1", "+ 1", "1 2", "0x10", "0b1", "1.0", "1e3", "12a", "a", "it's", "a\"b'c",
    "\n", "\x00", "1\x00", "\\", "\x7f", "\x80", "\xad", "\u200b", "\u00e9", "\U0001f600", "\U000e0001", "\ue000",
    "\u180e5", "\u2028 5", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "-9223372036854775809", "18446744073709551615", "18446744073709551616", "123456789012345678901234567890",
    "-000123",
]

# Long inputs as segments [(text, repeat)], the same form the Rust tests expand. (Within a few
# levels of the depth limit CPython turns syntax errors into RecursionError; not emulated.)
LONG_LOADS = [
    [(b"1", 4301)], [(b"[", 1), (b"1", 4400), (b"]", 1)], [(b"1", 4300), (b".5", 1)],
    [(b"[", 1497), (b"]", 1497)], [(b"[", 1498), (b"]", 1498)], [(b'{"a":', 1498), (b"1", 1), (b"}", 1498)],
    [(b"[", 1498)], [(b'{"a":', 1497), (b"[", 1)], [(b"[", 1490), (b"x", 1)],
]
LONG_INTS = [
    [("1", 4300)], [("1", 4301)], [("1_", 4300), ("1", 1)], [("0", 4301)], [("1", 4301), ("x", 1)],
    [("1", 4301), (" ", 1)], [("1", 4301), ("\x00", 1)], [("1", 4301), ("_", 1)], [("x", 300)], [("'", 250)],
    [("\u0661", 4301)], [(" -", 1), ("0", 4300), ("\u3000", 1)], [("1_", 3000)], [("1", 5000), ("__1", 1)],
    [("\u00e9", 300)], [("\x00", 150)],
]


def expand(segs):
    return segs[0][0][:0].join(t * n for t, n in segs)


def segs_lit(segs, lit):
    return "&[" + ", ".join("(%s, %d)" % (lit(t), n) for t, n in segs) + "]"

REPRS = ["", "x", "it's", 'say "hi"', "both ' and \"", "back\\slash", "\n\r\t", "\x00\x01\x1f\x7f",
         "\x80\x9f\xa0\xad\xff", "\u0100\u037f\u0378", "\u200b\u2028\u3000", "\U0001f600", "\U000e0001\U0010ffff",
         "\ue000\uffff\ufffd", "\u4e2d\u00e9", "tab\tend"]

DECIMALS = ["", "0", "0123456789", "12a", "\u0661\u0662", "\uff10", "\U0001d7ce", "\U0001fbf0\U0001fbf9",
            "\u00b2", "\u2460", "\u0f33", "1.5", "-1", " 1", "\u0e50\u0e59", "\U00011066", "\U0001e950"]


def gen_int():
    print("const PARSE_INT_CASES: &[(&str, Result<&str, &str>)] = &[")
    for long in (False, True):
        if long:
            print("const LONG_PARSE_INT_CASES: &[(Segs, Result<Segs, Segs>)] = &[")
        lit = long_str if long else rs_str
        for s in ([expand(x) for x in LONG_INTS] if long else INTS):
            try:
                r = "Ok(%s)" % lit(str(int(s)))
            except ValueError as e:
                r = "Err(%s)" % lit(str(e))
            shown = segs_lit(LONG_INTS[[expand(x) for x in LONG_INTS].index(s)], rs_str) if long else rs_str(s)
            print("    (%s, %s)," % (shown, r))
        print("];")
    print("const REPR_CASES: &[(&str, &str)] = &[")
    for s in REPRS:
        print("    (%s, %s)," % (rs_str(s), rs_str(repr(s))))
    print("];")
    print("const IS_DECIMAL_CASES: &[(&str, bool)] = &[")
    for s in DECIMALS:
        print("    (%s, %s)," % (rs_str(s), str(s.isdecimal()).lower()))
    print("];")


def gen_diff(directory):
    """Large random differential vectors for the ignored `diff_tests` (PYEMU_DIFF_DIR=directory)."""
    import os

    rnd = random.Random(99)
    alphabet = list(b'[]{}",:\\u0123456789abcdefABCDEF.eE+-ntrfalsNIy \n\t\r/') + [0, 1, 0x7F, 0xC3, 0xA9, 0xED, 0xA0, 0x80, 0xFF, 0xEF, 0xBB, 0xBF]
    seeds = [b'{"a": [1, 2.5e-3, -0, "x\\u00e9\\ud83d\\ude00"], "b": {"c": null, "d": true}}', b'[NaN, Infinity, -Infinity, 1e400]',
             b'"\\"\\\\\\/\\b\\f\\n\\r\\t"', b'{"zarr_format": 2, "shape": [100, 200], "chunks": [10, 20], "fill_value": 0.0}']
    with open(os.path.join(directory, "loads.jsonl"), "w") as f:
        for _ in range(30000):
            b = bytearray(rnd.choice(seeds))
            for _ in range(rnd.randint(1, 4)):
                at = rnd.randint(0, len(b))
                op = rnd.random()
                if op < 0.4 and at < len(b):
                    b[at] = rnd.choice(alphabet)
                elif op < 0.7:
                    b[at:at] = bytes([rnd.choice(alphabet)])
                elif at < len(b):
                    del b[at:at + rnd.randint(1, 3)]
            b = bytes(b)
            try:
                out, exc, msg = json.dumps(json.loads(b)), None, None
            except Exception as e:  # noqa: BLE001
                out, exc, msg = None, type(e).__name__, str(e)
            f.write(json.dumps({"in": b.hex(), "out": out, "exc": exc, "msg": msg}) + "\n")
    with open(os.path.join(directory, "floats.txt"), "w") as f:
        for _ in range(200000):
            r = rnd.random()
            if r < 0.5:
                x = struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(64)))[0]
            elif r < 0.8:
                x = float("%.*g" % (rnd.randint(1, 17), rnd.random() * 10 ** rnd.randint(-30, 30)))
            else:
                x = rnd.randint(-10 ** 18, 10 ** 18) / 10 ** rnd.randint(0, 20)
            if x != x:
                continue
            f.write("%016x %s\n" % (struct.unpack("<Q", struct.pack("<d", x))[0], json.dumps(x)))
    with open(os.path.join(directory, "ints.jsonl"), "w") as f:
        pieces = ["0", "1", "9", "_", "-", "+", " ", "\t", "\x0b", "\x1c", "\x00", "\u0661", "\uff19", "\u3000", "\xa0",
                  "\x85", "a", "'", '"', "\\", "\n", "\u00e9", "\U0001f600", "\U000e0001", "\u200b", "\x7f", "\ud7ff"]
        for _ in range(30000):
            s = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 8)))
            try:
                r = {"ok": str(int(s))}
            except ValueError as e:
                r = {"err": str(e)}
            r.update({"in": s, "dec": s.isdecimal(), "repr": repr(s)})
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(directory, "reprs.jsonl"), "w") as f:
        for c in range(0, 0x110000, 1):
            if 0xD800 <= c < 0xE000:
                continue
            f.write(json.dumps([c, repr(chr(c)), chr(c).isdecimal(), chr(c).isspace()]) + "\n")


if sys.argv[1] == "diff":
    gen_diff(sys.argv[2])
    sys.exit(0)
print("// @generated by gen_test_vectors.py %s with CPython %s. Do not edit.\n"
      % (sys.argv[1], sys.version.split()[0]))
print("type Segs<T = &'static str> = &'static [(T, usize)];")
if sys.argv[1] == "json":
    print("/// The dumps of the result, or the Python exception's type name and message.")
    print("type Outcome<T> = Result<T, (&'static str, T)>;")
{"json": gen_json, "int": gen_int}[sys.argv[1]]()
