//! Unit tests for [`crate::route`].

use super::*;

#[test]
fn parses_every_route_shape() {
    assert_eq!(
        parse("/github.com/!burnt!sushi/toml/@v/list").unwrap(),
        Route::List {
            module: "github.com/BurntSushi/toml".into()
        }
    );
    assert_eq!(
        parse("example.com/hello/@latest").unwrap(),
        Route::Latest {
            module: "example.com/hello".into()
        }
    );
    assert_eq!(
        parse("/example.com/hello/@v/v1.1.0.info").unwrap(),
        Route::Info {
            module: "example.com/hello".into(),
            version: VersionQuery::Canonical("v1.1.0".into())
        }
    );
    assert_eq!(
        parse("/example.com/hello/@v/master.info").unwrap(),
        Route::Info {
            module: "example.com/hello".into(),
            version: VersionQuery::Query("master".into())
        }
    );
    assert_eq!(
        parse("/example.com/hello/v2/@v/v2.0.0.zip").unwrap(),
        Route::Zip {
            module: "example.com/hello/v2".into(),
            version: "v2.0.0".into()
        }
    );
    assert_eq!(
        parse("/example.com/hello/@v/v1.0.0-!r!c1.mod").unwrap(),
        Route::Mod {
            module: "example.com/hello".into(),
            version: "v1.0.0-RC1".into()
        }
    );
    assert_eq!(
        parse("/sumdb/sum.golang.org/supported").unwrap(),
        Route::SumdbSupported {
            name: "sum.golang.org".into()
        }
    );
}

#[test]
fn accepts_the_go_commands_percent_encoded_bang() {
    // Logged from go 1.19.8 `go mod download` against the corpus.
    assert_eq!(
        parse("/github.com/%21burnt%21sushi/toml/@v/v1.2.0.zip").unwrap(),
        Route::Zip {
            module: "github.com/BurntSushi/toml".into(),
            version: "v1.2.0".into()
        }
    );
}

#[test]
fn errors_read_well_as_plain_text_bodies() {
    let message = |p: &str| parse(p).unwrap_err().to_string();
    assert_eq!(
        message("nodot/x/@v/list"),
        "malformed module path \"nodot/x\": missing dot in first path element"
    );
    assert_eq!(
        message("example.com//x/@v/list"),
        "empty element ('//') in request path"
    );
    assert_eq!(
        message("example.com/x/@v/v2.0.0.zip"),
        "example.com/x@v2.0.0: invalid version: should be v0 or v1, not v2 \
         (a v2+ module path ends in /vN)"
    );
    assert!(message("example.com/x/@v/master.mod").contains("canonical"));
}

#[test]
fn upstream_paths_round_trip() {
    for p in [
        "github.com/!burnt!sushi/toml/@v/list",
        "github.com/!burnt!sushi/toml/@v/v1.2.0.zip",
        "example.com/x/@v/v1.0.0-!r!c1.info",
        "example.com/x/@latest",
        "sumdb/sum.golang.org/lookup/github.com/!burnt!sushi/toml@v1.2.0",
        "sumdb/sum.golang.org/tile/8/0/x001/234.p/5",
    ] {
        assert_eq!(parse(p).unwrap().upstream_path(), p);
    }
}

#[test]
fn rejects_hostile_and_malformed_paths() {
    let long = "a".repeat(MAX_REQUEST_LEN + 1);
    for p in [
        "",
        "/",
        "/@v/list",
        "example.com/x",
        "example.com/x/@v/",
        "example.com/x/@v/v1.0.0",
        "example.com/x/@v/v1.0.0.exe",
        "example.com/%2e%2e/@v/list",
        "example.com/x/@v/v1.0.0.info?x=1",
        "example.com/x/@v/v1.0.0.info%3fx",
        "example.com/x/@v/v1.0.0%2",
        "example.com/x/@v/v1.0.0%zz.info",
        "example.com/x/@v/v1.0.0%ff.info",
        "example.com/x/@v/v1.0.0%00.info",
        "example.com/%252e/@v/list",
        "example.com/x/@v/../../../etc/passwd.info",
        "example.com/x\\y/@v/list",
        "example.com//x/@v/list",
        "//example.com/x/@v/list",
        "example.com/x/@v//v1.0.0.info",
        "example.com%2F%2Fx/@v/list",
        "example.com/x/@v/v1.0.0.info#frag",
        "example.com/x/@v/v1.0.0.info\n",
        "example.com/!x!/@v/list",
        "example.com/!!x/@v/list",
        "example.com/X/@v/list",
        "example.com/x/@v/v1.0.0-!R!C1.info",
        "example.com/x/@v/v1.0.0-rc!.info",
        "example.com/x/v2/@v/v1.0.0.mod",
        "example.com/x/@v/v1.mod",
        "example.com/x/@v/1.0.0.zip",
        "example.com/x/@v/v1.0.0-20191109021931-daa7c04131f5+incompatible.zip",
        "sumdb/sum..golang.org/latest",
        "sumdb/sum.golang.org/lookup/x@v1",
        "sumdb/sum.golang.org/tile/8/0/x001/../234",
        "example.com/x/@v/v1.0.zip",
        "example.com/x/@v/master.zip",
        "example.com/x/@v/v1.0.0+meta.mod",
        "example.com/x/@v/v2.0.0.mod",
        "example.com/x/@v/v1.0.0\u{0}.info",
        "example.com/x/@v/.info",
        "example.com/é/@v/list",
        "sumdb/",
        "sumdb/x/supported",
        long.as_str(),
    ] {
        assert!(parse(p).is_err(), "{p:?} accepted");
    }
}

#[test]
fn percent_decoding_borrows_paths_without_escapes() {
    use std::borrow::Cow;
    let path = "/example.com/hello/@v/v1.1.0.info";
    assert!(matches!(percent_decode(path), Ok(Cow::Borrowed(p)) if p == path));
    assert_eq!(
        percent_decode("/github.com/%21burnt/@v/list").unwrap(),
        "/github.com/!burnt/@v/list"
    );
}

/// Parsing checks a canonical version against the module's major suffix only (the path
/// and the version's form are checked on the way): the outcome must be `check_version`'s.
#[test]
fn versions_are_checked_as_check_version_does() {
    for (module, escaped, version) in [
        ("example.com/x", "example.com/x", "v1.2.3"),
        ("example.com/x", "example.com/x", "v2.0.0"),
        ("example.com/x", "example.com/x", "v2.0.0+incompatible"),
        ("example.com/x", "example.com/x", "v1.0.0+incompatible"),
        ("example.com/x/v2", "example.com/x/v2", "v2.1.0"),
        ("example.com/x/v2", "example.com/x/v2", "v3.0.0"),
        (
            "example.com/x/v2",
            "example.com/x/v2",
            "v2.0.0+incompatible",
        ),
        ("gopkg.in/yaml.v3", "gopkg.in/yaml.v3", "v3.0.1"),
        ("gopkg.in/yaml.v3", "gopkg.in/yaml.v3", "v2.0.0"),
        (
            "gopkg.in/check.v1",
            "gopkg.in/check.v1",
            "v0.0.0-20161208181325-20d25e280405",
        ),
        (
            "github.com/BurntSushi/toml",
            "github.com/!burnt!sushi/toml",
            "v1.2.0",
        ),
    ] {
        let expected = crate::version::check_version(module, version);
        for ext in ["info", "mod", "zip"] {
            let parsed = parse(&format!("{escaped}/@v/{version}.{ext}"));
            assert_eq!(
                parsed.is_ok(),
                expected.is_ok(),
                "{module}@{version}.{ext}: {parsed:?}"
            );
            if let Err(e) = &expected {
                assert_eq!(parsed.unwrap_err(), RouteError::Version(e.clone()));
            }
        }
    }
}
