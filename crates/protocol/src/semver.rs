//! Semantic versions exactly as `golang.org/x/mod/semver` and `module` treat them:
//! `v` prefix, shorthand `v1`/`v1.2` valid but not canonical, build metadata ignored in
//! ordering, and the go command's pseudo-version shapes.

use std::cmp::Ordering;

/// The parts of a valid version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    /// Set when minor or patch were omitted (`v1`, `v1.2`).
    short: bool,
    prerelease: &'a str,
    build: &'a str,
}

fn parse(v: &str) -> Option<Parsed<'_>> {
    let rest = v.strip_prefix('v')?;
    let (major, rest) = parse_int(rest)?;
    let mut p = Parsed {
        major,
        minor: "0",
        patch: "0",
        short: true,
        prerelease: "",
        build: "",
    };
    if rest.is_empty() {
        return Some(p);
    }
    let (minor, rest) = parse_int(rest.strip_prefix('.')?)?;
    p.minor = minor;
    if rest.is_empty() {
        return Some(p);
    }
    let (patch, mut rest) = parse_int(rest.strip_prefix('.')?)?;
    p.patch = patch;
    p.short = false;
    if rest.starts_with('-') {
        let end = rest.find('+').unwrap_or(rest.len());
        p.prerelease = &rest[..end];
        if !identifiers_ok(&p.prerelease[1..], true) {
            return None;
        }
        rest = &rest[end..];
    }
    if rest.starts_with('+') {
        p.build = rest;
        if !identifiers_ok(&rest[1..], false) {
            return None;
        }
        rest = "";
    }
    rest.is_empty().then_some(p)
}

/// Leading decimal digits without a superfluous leading zero.
fn parse_int(s: &str) -> Option<(&str, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, rest) = s.split_at(end);
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    Some((digits, rest))
}

/// Dot-separated non-empty `[0-9A-Za-z-]` identifiers; numeric ones without leading zeros
/// when `numeric_rule` (pre-release) applies.
fn identifiers_ok(s: &str, numeric_rule: bool) -> bool {
    s.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !(numeric_rule && is_num(id) && id.len() > 1 && id.starts_with('0'))
    })
}

fn is_num(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// True if `v` is a valid semantic version in Go's sense.
pub fn is_valid(v: &str) -> bool {
    parse(v).is_some()
}

/// The canonical form (`v1.2` → `v1.2.0`, build metadata dropped), or `None` if invalid.
pub fn canonical(v: &str) -> Option<String> {
    let p = parse(v)?;
    if !p.short {
        // `v` is the canonical form followed by its build metadata, if any.
        return Some(v[..v.len() - p.build.len()].to_string());
    }
    let mut out = String::with_capacity(v.len() + ".0.0".len());
    out.push('v');
    for part in [p.major, ".", p.minor, ".", p.patch] {
        out.push_str(part);
    }
    Some(out)
}

/// Like `module.CanonicalVersion`: canonical, but keeping a `+incompatible` suffix.
pub fn canonical_version(v: &str) -> Option<String> {
    let mut c = canonical(v)?;
    if build(v) == INCOMPATIBLE {
        c.push_str(INCOMPATIBLE);
    }
    Some(c)
}

/// True when `v` is exactly in canonical form (the only form proxies serve), i.e.
/// `canonical_version(v) == v`, decided on the parsed slices without building the form.
pub fn is_canonical(v: &str) -> bool {
    // A full `vX.Y.Z[-pre]` is its own canonical form; only build metadata other than
    // `+incompatible` (which `canonical_version` keeps) would be dropped from it.
    parse(v).is_some_and(|p| !p.short && (p.build.is_empty() || p.build == INCOMPATIBLE))
}

/// The build suffix `canonical_version` keeps.
const INCOMPATIBLE: &str = "+incompatible";

/// `vN` (a prefix of `v`), or empty for an invalid version.
pub fn major(v: &str) -> &str {
    // `parse` takes the major digits right after the leading `v`.
    parse(v).map_or("", |p| &v[..1 + p.major.len()])
}

/// The pre-release suffix including its `-`, or empty.
pub fn prerelease(v: &str) -> &str {
    parse(v).map(|p| p.prerelease).unwrap_or("")
}

/// The build suffix including its `+`, or empty.
pub fn build(v: &str) -> &str {
    parse(v).map(|p| p.build).unwrap_or("")
}

/// True for a valid version with a pre-release suffix.
pub fn is_prerelease(v: &str) -> bool {
    !prerelease(v).is_empty()
}

/// Orders two versions; invalid versions sort before all valid ones and equal each other.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => cmp_int(x.major, y.major)
            .then_with(|| cmp_int(x.minor, y.minor))
            .then_with(|| cmp_int(x.patch, y.patch))
            .then_with(|| cmp_prerelease(x.prerelease, y.prerelease)),
    }
}

fn cmp_int(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn cmp_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let mut xs = a[1..].split('.');
    let mut ys = b[1..].split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (is_num(x), is_num(y)) {
                    (true, true) => cmp_int(x, y),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// Length of the pseudo-version timestamp `yyyymmddhhmmss`.
const TIMESTAMP_LEN: usize = 14;

/// `module.IsPseudoVersion`: `vX.0.0-yyyymmddhhmmss-rev`, `vX.Y.Z-pre.0.yyyymmddhhmmss-rev`
/// or `vX.Y.Z-0.yyyymmddhhmmss-rev` (optionally with build metadata).
pub fn is_pseudo_version(v: &str) -> bool {
    if v.matches('-').count() < 2 || !is_valid(v) {
        return false;
    }
    let core = v.split('+').next().unwrap_or(v);
    let Some((head, rev)) = core.rsplit_once('-') else {
        return false;
    };
    if rev.is_empty()
        || !rev.bytes().all(|b| b.is_ascii_alphanumeric())
        || head.len() < TIMESTAMP_LEN
    {
        return false;
    }
    let (pre, stamp) = head.split_at(head.len() - TIMESTAMP_LEN);
    if !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Some(after_major) = pre
        .strip_prefix('v')
        .and_then(|s| s.find('.').map(|i| (&s[..i], &s[i + 1..])))
        .filter(|(major, _)| is_num(major))
        .map(|(_, rest)| rest)
    else {
        return false;
    };
    if after_major == "0.0-" {
        return true;
    }
    // `Y.Z-` then `([^+]*\.)?0\.`
    let Some((minor_patch, tail)) = after_major.split_once('-') else {
        return false;
    };
    let numbers_ok = minor_patch
        .split_once('.')
        .is_some_and(|(y, z)| is_num(y) && is_num(z));
    numbers_ok && (tail == "0." || tail.ends_with(".0."))
}

#[cfg(test)]
mod tests;
