//! Just enough of an HTML reader for a DOM that Chromium serialized: start tags with their
//! attributes, and an element's text. In such a dump every `<` outside an attribute value
//! opens a tag (text has it escaped as `&lt;`), which is what makes the hostile-string check
//! meaningful: an `<img` here is an element, not text.

use std::collections::BTreeMap;

/// An element: its tag, attributes and the markup between its start and end tags.
#[derive(Debug)]
pub struct Element<'a> {
    /// Lower-case tag name.
    pub tag: String,
    /// Attributes, values unescaped.
    pub attrs: BTreeMap<String, String>,
    /// Inner markup (empty for void elements).
    pub inner: &'a str,
}

impl Element<'_> {
    /// An attribute's value, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }

    /// Its text: tags dropped, entities decoded, whitespace collapsed.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in self.inner.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => {
                    in_tag = false;
                    out.push(' ');
                }
                _ if !in_tag => out.push(c),
                _ => {}
            }
        }
        unescape(&out)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Every element in document order.
pub fn elements(dom: &str) -> Vec<Element<'_>> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = dom[at..].find('<') {
        let start = at + offset;
        at = start + 1;
        let name: String = dom[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name.is_empty() {
            continue; // an end tag, a comment or the doctype
        }
        let (attrs, end) = attributes(dom, at + name.len());
        let tag = name.to_ascii_lowercase();
        let inner = inner(dom, end, &tag);
        found.push(Element { tag, attrs, inner });
        at = end;
    }
    found
}

/// Elements with `attr` set (to `value`, when given).
pub fn with_attr<'a>(dom: &'a str, attr: &str, value: Option<&str>) -> Vec<Element<'a>> {
    elements(dom)
        .into_iter()
        .filter(|e| {
            e.attr(attr)
                .is_some_and(|v| value.is_none_or(|want| v == want))
        })
        .collect()
}

/// The element with this id; panics (showing the DOM) when there is none.
pub fn by_id<'a>(dom: &'a str, id: &str) -> Element<'a> {
    with_attr(dom, "id", Some(id))
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no element #{id} in\n{dom}"))
}

/// Parses attributes from just after the tag name to the closing `>`; returns them and the
/// offset just past it.
fn attributes(dom: &str, from: usize) -> (BTreeMap<String, String>, usize) {
    let bytes = dom.as_bytes();
    let mut attrs = BTreeMap::new();
    let mut i = from;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] == b'>' {
            return (attrs, (i + 1).min(bytes.len()));
        }
        let name_start = i;
        while i < bytes.len() && !b" \t\n\r=>/".contains(&bytes[i]) {
            i += 1;
        }
        let name = dom[name_start..i].to_ascii_lowercase();
        let mut value = String::new();
        if bytes.get(i) == Some(&b'=') && bytes.get(i + 1) == Some(&b'"') {
            let close = dom[i + 2..].find('"').map_or(bytes.len(), |n| i + 2 + n);
            value = unescape(&dom[i + 2..close]);
            i = close + 1;
        }
        attrs.insert(name, value);
    }
}

/// The markup up to the end tag matching a start tag that ended at `from`.
fn inner<'a>(dom: &'a str, from: usize, tag: &str) -> &'a str {
    const VOID: [&str; 8] = ["img", "br", "input", "meta", "link", "hr", "source", "wbr"];
    if VOID.contains(&tag) {
        return "";
    }
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut depth = 1;
    let mut at = from;
    while let Some(offset) = dom[at..].find(&close) {
        let end = at + offset;
        depth += dom[at..end]
            .match_indices(&open)
            .filter(|(n, _)| {
                let next = dom
                    .as_bytes()
                    .get(at + n + open.len())
                    .copied()
                    .unwrap_or(b'>');
                next == b'>' || next.is_ascii_whitespace()
            })
            .count();
        depth -= 1;
        at = end + close.len();
        if depth == 0 {
            return &dom[from..end];
        }
    }
    &dom[from..]
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}
