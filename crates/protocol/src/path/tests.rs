//! Unit tests for [`crate::path`].

use super::*;

#[test]
fn valid_module_paths() {
    for p in [
        "github.com/BurntSushi/toml",
        "example.com/hello/v2",
        "gopkg.in/yaml.v3",
        "golang.org/x/text",
        "a.b/c_d~e/f-g",
        "gopkg.in/check.v1",
        "gopkg.in/x.v2-unstable",
    ] {
        check_path(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    }
}

#[test]
fn invalid_module_paths() {
    let long = format!("example.com/{}", "a".repeat(MAX_PATH_LEN));
    for p in [
        "",
        "/example.com/x",
        "example.com/",
        "example.com//x",
        "nodot/x",
        "-a.com/x",
        "Example.com/x",
        "example.com/../x",
        "example.com/./x",
        "example.com/.hidden",
        "example.com/x.",
        "example.com/x/v1",
        "example.com/x/v0",
        "example.com/x/v02",
        "example.com/x/v2.0",
        "example.com/a b",
        "example.com/a@b",
        "example.com/con",
        "example.com/COM1.txt",
        "example.com/abc~1",
        "gopkg.in/yaml",
        "gopkg.in/yaml.v03",
        "example.com/é",
        long.as_str(),
    ] {
        assert!(check_path(p).is_err(), "{p:?} accepted");
    }
}

#[test]
fn major_version_suffixes() {
    assert_eq!(
        split_path_version("example.com/x/v2"),
        Some(("example.com/x", "/v2"))
    );
    assert_eq!(
        split_path_version("example.com/x"),
        Some(("example.com/x", ""))
    );
    assert_eq!(
        split_path_version("gopkg.in/yaml.v3"),
        Some(("gopkg.in/yaml", ".v3"))
    );
    assert_eq!(split_path_version("example.com/x/v1"), None);
}

#[test]
fn escaping_round_trips_and_rejects_bad_escapes() {
    assert_eq!(
        escape_path("github.com/BurntSushi/toml").unwrap(),
        "github.com/!burnt!sushi/toml"
    );
    assert_eq!(
        unescape_path("github.com/!burnt!sushi/toml").unwrap(),
        "github.com/BurntSushi/toml"
    );
    assert_eq!(escape_version("v1.0.0-RC1").unwrap(), "v1.0.0-!r!c1");
    assert_eq!(unescape_version("v1.0.0-!r!c1").unwrap(), "v1.0.0-RC1");
    for bad in [
        "github.com/BurntSushi/toml",
        "github.com/!!burnt/toml",
        "github.com/burnt!/toml",
        "github.com/!1/x",
        "github.com/x!",
    ] {
        assert!(unescape_path(bad).is_err(), "{bad}");
    }
    assert!(unescape_version("v1.0.0/../x").is_err());
    assert!(
        unescape_version("vé").is_err(),
        "Go's unescape is ASCII-only"
    );
    assert_eq!(escape_version("backup~1").unwrap(), "backup~1");
    assert!(check_path("example.com/PROGRA~1").is_err());
    assert!(escape_path("github.com/a!b/c").is_err());
}

#[test]
fn unescaping_borrows_text_without_a_bang() {
    use std::borrow::Cow;
    let borrowed = unescape_path_borrowed("github.com/go-yaml/yaml").unwrap();
    assert!(matches!(borrowed, Cow::Borrowed("github.com/go-yaml/yaml")));
    let decoded = unescape_path_borrowed("github.com/!burnt!sushi/toml").unwrap();
    assert!(matches!(decoded, Cow::Owned(_)));
    assert_eq!(decoded, "github.com/BurntSushi/toml");
    // The text before the first `!` is kept, the rest decoded.
    assert_eq!(
        unescape_version_borrowed("v1.0.0-!r!c1.x!y").unwrap(),
        "v1.0.0-RC1.xY"
    );
    assert!(matches!(
        unescape_version_borrowed("v1.0.0-rc1").unwrap(),
        Cow::Borrowed("v1.0.0-rc1")
    ));
    // The borrowed path is checked as strictly as the decoded one.
    for bad in [
        "github.com/Burnt/toml",
        "github.com/x!",
        "github.com/!1/x",
        "github.com/é/x",
        "nodot/x",
    ] {
        assert!(unescape_path_borrowed(bad).is_err(), "{bad}");
        assert_eq!(
            unescape_path_borrowed(bad).map(|p| p.into_owned()),
            unescape_path(bad),
            "{bad}"
        );
    }
    assert_eq!(
        unescape_path_borrowed("github.com/a!")
            .unwrap_err()
            .to_string(),
        "invalid escaped module path \"github.com/a!\": trailing '!'"
    );
}
