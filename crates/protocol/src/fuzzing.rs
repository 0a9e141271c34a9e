//! Invariants for fuzzing the path codec and router: they must hold for ANY input.
//! Used by the cargo-fuzz target in `crates/protocol/fuzz` and by the stable smoke test
//! `tests/fuzz_smoke.rs`. Every check panics (that is how a fuzzer reports) on violation.

use std::cmp::Ordering;

use crate::artifact::{module_directive, validate_info, validate_mod};
use crate::path::{check_path, escape_path, escape_version, unescape_path, unescape_version};
use crate::route::{parse, Route};
use crate::{semver, version};

/// Feeds `data` (as text; invalid UTF-8 is replaced) to every parser; panics if an
/// invariant breaks.
pub fn path_codec(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    codec(text);
    router(text);
    versions(text);
    // Upstream content parsers must not panic either.
    let _ = validate_info(data, text);
    let _ = validate_mod(data, text);
    let _ = module_directive(text);
}

/// Escaping round trips in both directions.
fn codec(text: &str) {
    if let Ok(path) = unescape_path(text) {
        assert!(check_path(&path).is_ok(), "unescape_path gave a bad path");
        assert_eq!(
            escape_path(&path).as_deref(),
            Ok(text),
            "escape(unescape(x))"
        );
    }
    if check_path(text).is_ok() {
        let escaped = escape_path(text).expect("valid paths escape");
        assert!(escaped.is_ascii() && !escaped.bytes().any(|b| b.is_ascii_uppercase()));
        assert_eq!(
            unescape_path(&escaped).as_deref(),
            Ok(text),
            "unescape(escape(x))"
        );
    }
    if let Ok(version) = unescape_version(text) {
        assert_eq!(
            escape_version(&version).as_deref(),
            Ok(text),
            "version round trip"
        );
    }
    if let Ok(escaped) = escape_version(text) {
        assert_eq!(
            unescape_version(&escaped).as_deref(),
            Ok(text),
            "version round trip"
        );
    }
}

/// A parsed route survives its upstream path and never carries traversal.
fn router(text: &str) {
    let Ok(route) = parse(text) else {
        return;
    };
    let upstream = route.upstream_path();
    assert_eq!(
        parse(&upstream).as_ref(),
        Ok(&route),
        "upstream path round trip"
    );
    assert!(
        !upstream
            .split('/')
            .any(|e| e.is_empty() || e == ".." || e == "."),
        "empty or dot element in {upstream:?}"
    );
    match &route {
        Route::Mod { module, version } | Route::Zip { module, version } => {
            assert!(semver::is_canonical(version));
            assert!(version::check_version(module, version).is_ok());
        }
        Route::List { module } | Route::Latest { module } | Route::Info { module, .. } => {
            assert!(check_path(module).is_ok());
        }
        Route::SumdbSupported { .. } | Route::Sumdb { .. } => {}
    }
}

/// Semver functions agree with each other.
fn versions(text: &str) {
    let valid = semver::is_valid(text);
    assert_eq!(semver::canonical(text).is_some(), valid);
    assert_eq!(semver::major(text).is_empty(), !valid);
    if let Some(canonical) = semver::canonical(text) {
        assert!(
            semver::is_valid(&canonical),
            "canonical form {canonical:?} invalid"
        );
        assert_eq!(semver::compare(text, &canonical), Ordering::Equal);
        assert_eq!(
            semver::canonical(&canonical).as_deref(),
            Some(canonical.as_str())
        );
    }
    if semver::is_canonical(text) || semver::is_pseudo_version(text) {
        assert!(valid, "{text:?} canonical or pseudo but invalid");
    }
    assert_eq!(semver::compare(text, text), Ordering::Equal);
    assert_eq!(
        semver::compare(text, "v1.0.0"),
        semver::compare("v1.0.0", text).reverse()
    );
    let _ = version::check_version("example.com/m", text);
    let _ = version::check_version(text, "v1.0.0");
}
