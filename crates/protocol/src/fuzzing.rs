//! Invariants for fuzzing the path codec and router: must hold for ANY input.
//! Used by the cargo-fuzz target in `crates/protocol/fuzz` and by a stable smoke test.

use crate::path::{check_path, escape_path, escape_version, unescape_path, unescape_version};
use crate::route::{parse, Route};

/// Feeds `data` to every parser; panics if an invariant breaks.
pub fn path_codec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = unescape_path(text) {
        assert!(
            check_path(&path).is_ok(),
            "unescape_path returned an invalid path"
        );
        assert_eq!(
            escape_path(&path).as_deref(),
            Ok(text),
            "escape(unescape(x)) != x"
        );
    }
    if check_path(text).is_ok() {
        let escaped = escape_path(text).expect("valid paths escape");
        assert_eq!(
            unescape_path(&escaped).as_deref(),
            Ok(text),
            "unescape(escape(x)) != x"
        );
    }
    if let Ok(version) = unescape_version(text) {
        assert_eq!(
            escape_version(&version).as_deref(),
            Ok(text),
            "version escape round trip"
        );
    }
    if let Ok(route) = parse(text) {
        let upstream = route.upstream_path();
        assert_eq!(
            parse(&upstream).as_ref(),
            Ok(&route),
            "route does not survive its upstream path"
        );
        assert!(
            !upstream.split('/').any(|e| e == ".." || e == "."),
            "dot element in {upstream:?}"
        );
        if let Route::Mod { version, .. } | Route::Zip { version, .. } = &route {
            assert!(crate::semver::is_canonical(version));
        }
    }
}
