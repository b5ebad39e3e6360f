//! Directory-style listings of a flat key space (`a/b/c` keys seen as paths).

/// The distinct next path components under a prefix: keys directly under it, and the names
/// of "directories" (components with more keys below them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirListing {
    /// Names (not full keys) of keys directly under the prefix, sorted.
    pub keys: Vec<String>,
    /// Names of directories directly under the prefix, sorted, without a trailing `/`.
    pub dirs: Vec<String>,
}

impl DirListing {
    /// True if nothing is under the prefix (it is not a directory).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.dirs.is_empty()
    }
}

/// Every key of a dataset, sorted: answers listings without walking the dataset again.
///
/// ```
/// use ipfs_hamt::dataset::KeyIndex;
/// let idx = KeyIndex::new(vec!["t/c/0".into(), "zarr.json".into(), "t/zarr.json".into()]);
/// let root = idx.list_dir("");
/// assert_eq!((root.keys, root.dirs), (vec!["zarr.json".to_string()], vec!["t".to_string()]));
/// let t = idx.list_dir("t/"); // "t" lists the same
/// assert_eq!((t.keys, t.dirs), (vec!["zarr.json".to_string()], vec!["c".to_string()]));
/// assert!(idx.list_dir("zarr.json").is_empty());
/// assert_eq!(idx.with_prefix("t/").count(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyIndex {
    keys: Vec<String>,
}

impl KeyIndex {
    /// An index of `keys` (any order; duplicates are dropped).
    pub fn new(mut keys: Vec<String>) -> Self {
        keys.sort_unstable();
        keys.dedup();
        KeyIndex { keys }
    }

    /// Every key, sorted.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True if `key` is a key.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.binary_search_by(|k| k.as_str().cmp(key)).is_ok()
    }

    /// The keys starting with `prefix`, sorted.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        let start = self.keys.partition_point(|k| k.as_str() < prefix);
        self.keys[start..]
            .iter()
            .take_while(move |k| k.starts_with(prefix))
    }

    /// The next path components under the directory `prefix` (`""` is the root; a trailing
    /// `/` is optional). A key equal to the directory name itself is not under it.
    pub fn list_dir(&self, prefix: &str) -> DirListing {
        let dir = prefix.trim_end_matches('/');
        let base = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out = DirListing::default();
        for k in self.with_prefix(&base) {
            let rest = &k[base.len()..];
            match rest.split_once('/') {
                Some((first, _)) => {
                    // Sorted keys put a directory's keys together: compare with the last one.
                    if out.dirs.last().map(String::as_str) != Some(first) {
                        out.dirs.push(first.to_owned());
                    }
                }
                None => out.keys.push(rest.to_owned()),
            }
        }
        // `a/b` and `a.x` sort between `a/` entries only in odd key sets; keep it exact.
        out.dirs.dedup();
        out.dirs.sort_unstable();
        out.dirs.dedup();
        out
    }
}
