//! Byte ranges with py-hamt's semantics (Python slices: out-of-range parts are clamped).

use bytes::Bytes;

/// A part of a value to read.
///
/// ```
/// use ipfs_hamt::ByteRange;
/// let v = bytes::Bytes::from_static(b"0123456789");
/// assert_eq!(&ByteRange::Slice { offset: 2, length: 3 }.apply(&v)[..], b"234");
/// assert_eq!(&ByteRange::Suffix(4).apply(&v)[..], b"6789");
/// assert_eq!(&ByteRange::From(7).apply(&v)[..], b"789");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ByteRange {
    /// The whole value.
    #[default]
    Full,
    /// From `offset` to the end.
    From(u64),
    /// `length` bytes from `offset` (fewer at the end of the value).
    Slice {
        /// First byte.
        offset: u64,
        /// Number of bytes.
        length: u64,
    },
    /// The last `n` bytes (the whole value if shorter).
    Suffix(u64),
}

impl ByteRange {
    /// Maps py-hamt's `get(offset, length, suffix)` arguments to a range, quirks included:
    /// `length` without `offset` is ignored (the whole value), `suffix` wins over the others
    /// only when `offset` is absent.
    pub fn from_py(offset: Option<u64>, length: Option<u64>, suffix: Option<u64>) -> Self {
        match (offset, length, suffix) {
            (Some(offset), Some(length), _) => ByteRange::Slice { offset, length },
            (Some(offset), None, _) => ByteRange::From(offset),
            (None, _, Some(n)) => ByteRange::Suffix(n),
            (None, _, None) => ByteRange::Full,
        }
    }

    /// True if the range selects no bytes whatever the value (`length == 0` or `suffix == 0`),
    /// so a reader can answer without I/O as py-hamt does.
    pub fn is_empty(&self) -> bool {
        matches!(
            self,
            ByteRange::Slice { length: 0, .. } | ByteRange::Suffix(0)
        )
    }

    /// The `[start, end)` window of a value of `len` bytes.
    pub fn window(&self, len: u64) -> (u64, u64) {
        match *self {
            ByteRange::Full => (0, len),
            ByteRange::From(o) => (o.min(len), len),
            ByteRange::Slice { offset, length } => {
                let s = offset.min(len);
                (s, offset.saturating_add(length).min(len))
            }
            ByteRange::Suffix(0) => (len, len),
            ByteRange::Suffix(n) => (len.saturating_sub(n), len),
        }
    }

    /// Applies the range to a whole value.
    pub fn apply(&self, value: &Bytes) -> Bytes {
        let (s, e) = self.window(value.len() as u64);
        // Both ends are clamped to the value length, so the casts and the slice are in bounds.
        value.slice(s as usize..e as usize)
    }

    /// The HTTP `Range` header value for this range, or `None` for the whole value.
    pub fn http_header(&self) -> Option<String> {
        match *self {
            ByteRange::Full => None,
            ByteRange::From(o) => Some(format!("bytes={o}-")),
            ByteRange::Slice { offset, length } => Some(format!(
                "bytes={offset}-{}",
                offset.saturating_add(length).saturating_sub(1)
            )),
            ByteRange::Suffix(n) => Some(format!("bytes=-{n}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_slice_semantics() {
        let v = Bytes::from_static(b"0123456789");
        let r = |o, l, s| ByteRange::from_py(o, l, s).apply(&v);
        assert_eq!(&r(Some(2), Some(3), None)[..], b"234");
        assert_eq!(&r(Some(7), None, None)[..], b"789");
        assert_eq!(&r(None, None, Some(4))[..], b"6789");
        assert_eq!(&r(Some(4), Some(0), None)[..], b"");
        assert_eq!(&r(None, None, Some(0))[..], b"");
        assert_eq!(&r(None, Some(3), None)[..], b"0123456789");
        assert_eq!(&r(Some(20), Some(3), None)[..], b"");
        assert_eq!(&r(Some(8), Some(30), None)[..], b"89");
        assert_eq!(&r(None, None, Some(30))[..], b"0123456789");
        assert_eq!(&r(Some(u64::MAX), Some(u64::MAX), None)[..], b"");
    }
}
