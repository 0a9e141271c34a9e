//! Unit tests for [`crate::semver`].

use super::*;

#[test]
fn validity_follows_x_mod_semver() {
    for v in [
        "v1",
        "v1.2",
        "v1.2.3",
        "v1.2.3-pre",
        "v1.2.3-pre.1+build.01",
        "v0.0.0",
        "v2.0.0+incompatible",
        "v1.2.3-0a",
    ] {
        assert!(is_valid(v), "{v}");
    }
    for v in [
        "",
        "1.2.3",
        "v",
        "v01.2.3",
        "v1.02.3",
        "v1.2.03",
        "v1.2.3-",
        "v1.2.3-01",
        "v1.2.3-a..b",
        "v1.2.3+",
        "v1-pre",
        "v1.2-pre",
        "v1.2.3.4",
        "V1.2.3",
        "v1.2.3-é",
    ] {
        assert!(!is_valid(v), "{v}");
    }
}

#[test]
fn canonical_forms() {
    assert_eq!(canonical("v1").as_deref(), Some("v1.0.0"));
    assert_eq!(canonical("v1.2").as_deref(), Some("v1.2.0"));
    assert_eq!(canonical("v1.2.3+meta").as_deref(), Some("v1.2.3"));
    assert!(is_canonical("v1.2.3"));
    assert!(is_canonical("v2.0.0+incompatible"));
    assert!(!is_canonical("v1.2.3+meta"));
    assert!(!is_canonical("v1.2"));
}

#[test]
fn ordering_matches_semver_precedence() {
    let ordered = [
        "v0.9.0",
        "v1.0.0-alpha",
        "v1.0.0-alpha.1",
        "v1.0.0-alpha.beta",
        "v1.0.0-beta",
        "v1.0.0-beta.2",
        "v1.0.0-beta.11",
        "v1.0.0-rc.1",
        "v1.0.0",
        "v1.2.0",
        "v1.10.0",
        "v10.0.0",
    ];
    for pair in ordered.windows(2) {
        assert_eq!(compare(pair[0], pair[1]), Ordering::Less, "{pair:?}");
        assert_eq!(compare(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
    }
    assert_eq!(compare("v1.0.0+a", "v1.0.0+b"), Ordering::Equal);
    assert_eq!(compare("bad", "v0.0.1"), Ordering::Less);
}

#[test]
fn pseudo_versions() {
    for v in [
        "v0.0.0-20191109021931-daa7c04131f5",
        "v1.2.4-0.20191109021931-daa7c04131f5",
        "v1.2.3-pre.0.20191109021931-daa7c04131f5",
        "v2.0.0-20191109021931-daa7c04131f5+incompatible",
    ] {
        assert!(is_pseudo_version(v), "{v}");
    }
    for v in [
        "v1.0.0",
        "v1.2.3-pre",
        "v0.0.0-2019110902193-daa7c04131f5",
        "v1.2.4-1.20191109021931-daa7c04131f5",
        "v0.0.0-20191109021931-",
        "v1.2.3-pre.20191109021931-daa7c04131f5",
    ] {
        assert!(!is_pseudo_version(v), "{v}");
    }
}

/// `canonical` and `is_canonical` build nothing they do not return: they must still agree
/// with the definitions they replaced (`format!` of the parsed parts, and
/// `canonical_version(v) == v`).
#[test]
fn canonical_forms_agree_with_their_definitions() {
    let versions = [
        "v1",
        "v1.2",
        "v1.2.3",
        "v0.0.0",
        "v10.20.30",
        "v1.2.3-pre",
        "v1.2.3-pre.1",
        "v1.2.3+meta",
        "v1.2.3-pre+meta.1",
        "v2.0.0+incompatible",
        "v2.0.0-rc.1+incompatible",
        "v2.0.0+incompatible.x",
        "v2.0.0+incompatiblE",
        "v2+incompatible",
        "v2.0+incompatible",
        "v0.0.0-20191109021931-daa7c04131f5",
        "v1.2.3-",
        "v01.2.3",
        "1.2.3",
        "",
        "v",
    ];
    for v in versions {
        let by_format =
            parse(v).map(|p| format!("v{}.{}.{}{}", p.major, p.minor, p.patch, p.prerelease));
        assert_eq!(canonical(v), by_format, "{v}");
        let exact = canonical(v).map(|mut c| {
            if build(v) == "+incompatible" {
                c.push_str("+incompatible");
            }
            c
        });
        assert_eq!(is_canonical(v), exact.as_deref() == Some(v), "{v}");
        assert_eq!(canonical_version(v), exact, "{v}");
    }
    assert!(is_canonical("v2.0.0-rc.1+incompatible"));
    assert!(!is_canonical("v2.0.0+incompatible.x"));
    assert!(!is_canonical("v2+incompatible"));
}

#[test]
fn major_is_a_prefix_of_the_version() {
    assert_eq!(major("v1"), "v1");
    assert_eq!(major("v12.3.4-pre+meta"), "v12");
    assert_eq!(major("v0.0.0-20191109021931-daa7c04131f5"), "v0");
    assert_eq!(major("v2.0.0+incompatible"), "v2");
    for bad in ["", "v", "1.2.3", "v01.0.0", "v1.2.3-"] {
        assert_eq!(major(bad), "", "{bad}");
    }
}
