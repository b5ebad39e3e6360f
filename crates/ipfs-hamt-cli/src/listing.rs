//! HTML directory listings for `serve`, in the form fsspec's `HTTPFileSystem.ls` reads.
//!
//! fsspec lists an HTTP "directory" by fetching its URL and collecting the `href`s of `<a>`
//! tags in a `text/html` body; names ending in `/` are directories. Links here are relative
//! to the directory (as Python's `http.server` writes them), and a `<base>` element names the
//! directory, so browsers resolve them too when the URL has no trailing slash (zarr-python
//! asks for `/0`, not `/0/`).

use ipfs_hamt::dataset::DirListing;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Characters left as they are in link targets: unreserved URL characters (RFC 3986).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Escapes text for HTML element content and attribute values.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML page listing `dir` (a key prefix without a trailing `/`, `""` for the root):
/// sub-directories first (with a trailing `/`), then keys, each sorted.
pub fn html(dir: &str, listing: &DirListing) -> String {
    let path = if dir.is_empty() {
        "/".to_string()
    } else {
        let segs: Vec<String> = dir
            .split('/')
            .map(|s| utf8_percent_encode(s, PATH_SEGMENT).to_string())
            .collect();
        format!("/{}/", segs.join("/"))
    };
    let title = html_escape(&format!("Index of /{dir}"));
    let mut page = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<base href=\"{}\">\n\
         <title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n<ul>\n",
        html_escape(&path)
    );
    let names = listing
        .dirs
        .iter()
        .map(|d| (d, "/"))
        .chain(listing.keys.iter().map(|k| (k, "")));
    for (name, suffix) in names {
        let href = format!("{}{suffix}", utf8_percent_encode(name, PATH_SEGMENT));
        page += &format!(
            "<li><a href=\"{}\">{}{suffix}</a></li>\n",
            html_escape(&href),
            html_escape(name)
        );
    }
    page += "</ul>\n</body>\n</html>\n";
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_encoded_and_escaped() {
        let l = DirListing {
            keys: vec!["zarr.json".into(), "a b&<c>".into()],
            dirs: vec!["lat".into()],
        };
        let page = html("0", &l);
        assert!(page.contains("<base href=\"/0/\">"), "{page}");
        assert!(page.contains("<a href=\"lat/\">lat/</a>"), "{page}");
        assert!(
            page.contains("<a href=\"zarr.json\">zarr.json</a>"),
            "{page}"
        );
        assert!(
            page.contains("<a href=\"a%20b%26%3Cc%3E\">a b&amp;&lt;c&gt;</a>"),
            "{page}"
        );
        assert!(html("", &DirListing::default()).contains("<base href=\"/\">"));
    }
}
