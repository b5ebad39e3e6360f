//! Exact emulations of the bits of Python that py-hamt's sharded Zarr store relies on:
//! the `json` module ([`json`](crate::pyemu::json)), `int(str)` / `str.isdecimal()`
//! ([`int`](crate::pyemu::int)) and `repr()` of `str` and `float` ([`repr`](crate::pyemu::repr)), as CPython 3.12
//! behaves.
//!
//! The Rust side must produce the same bytes (hence CIDs) and accept/reject the same keys as
//! Python does; the expected values in the tests were generated with CPython 3.12.1.
//! Unicode tables (`tables.rs`) come from CPython's `unicodedata` 15.0.0 via `gen_tables.py`.

mod decode;
pub mod int;
pub mod json;
pub mod repr;
#[rustfmt::skip]
mod tables;

#[cfg(test)]
mod diff_tests;
#[cfg(test)]
mod int_tests;
#[cfg(test)]
mod json_tests;

pub use int::{decimal_value, is_decimal, parse_int, PyInt};
pub use json::{dumps, dumps_indent2, loads, loads_str, loads_utf8, PyJson, PyJsonError};
pub use repr::{repr_float, repr_str};
pub use tables::UNICODE_VERSION;
