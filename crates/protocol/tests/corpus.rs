//! The real corpus (`../shared/testdata/goproxy-corpus`, built with golang.org/x/mod/zip)
//! must pass every validator, its h1 hashes must equal what the real `go` computed, and
//! hostile variants must be refused.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use goproxy_protocol::artifact::{validate_info, validate_mod};
use goproxy_protocol::dirhash::go_mod_h1;
use goproxy_protocol::path::unescape_path;
use goproxy_protocol::zipcheck::{check_zip, ZipError};

fn corpus() -> PathBuf {
    std::env::var("GOPROXY_HA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/goproxy-corpus")
        })
}

/// `(module, version, stem path)` for every version directory entry in the corpus.
fn versions(root: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "mod") {
                let escaped = dir
                    .parent()
                    .unwrap()
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                let module = unescape_path(&escaped).unwrap_or_else(|e| panic!("{escaped}: {e}"));
                let version = path.file_stem().unwrap().to_str().unwrap().to_string();
                out.push((module, version, path.with_extension("")));
            }
        }
    }
    out.sort();
    out
}

/// `stem` + `.ext` (versions contain dots, so `Path::with_extension` would cut them).
fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    PathBuf::from(format!("{}.{ext}", stem.display()))
}

#[test]
fn every_corpus_artifact_validates() {
    let all = versions(&corpus());
    assert!(all.len() >= 30, "corpus has only {} versions", all.len());
    for (module, version, stem) in all {
        let info = std::fs::read(with_ext(&stem, "info")).unwrap();
        validate_info(&info, &version).unwrap_or_else(|e| panic!("{module}@{version}.info: {e}"));
        let go_mod = std::fs::read(with_ext(&stem, "mod")).unwrap();
        validate_mod(&go_mod, &module).unwrap_or_else(|e| panic!("{module}@{version}.mod: {e}"));
        let zip = std::fs::File::open(with_ext(&stem, "zip")).unwrap();
        check_zip(zip, &module, &version, &go_mod)
            .unwrap_or_else(|e| panic!("{module}@{version}.zip: {e}"));
    }
}

#[test]
fn go_mod_hashes_equal_the_go_commands() {
    // `GoModSum` printed by the same `go mod download -json` run (go 1.19.8).
    for (stem, h1) in [
        (
            "github.com/gin-gonic/gin/@v/v1.8.1",
            "h1:eMGiLheedPLA0gz34rBb6xRrRzg6l//8dsQJ44pVkes=",
        ),
        (
            "example.com/hello/@v/v1.1.0",
            "h1:650DmeZPfQJ/Go7ryOmtlUer5d3q3P8j9nWVoWgO2VM=",
        ),
        (
            "github.com/!burnt!sushi/toml/@v/v1.2.0",
            "h1:CxXYINrC8qIiEnFrOxCa7Jy5BFHlXnUU2pbicEuybxQ=",
        ),
    ] {
        let go_mod = std::fs::read(with_ext(&corpus().join(stem), "mod")).unwrap();
        assert_eq!(go_mod_h1(&go_mod), h1, "{stem}");
    }
}

#[test]
fn h1_hashes_equal_the_go_commands() {
    // Printed by `go mod download -json` (go 1.19.8) with this corpus as GOPROXY.
    let golden = [
        (
            "github.com/gin-gonic/gin",
            "v1.8.1",
            "github.com/gin-gonic/gin/@v/v1.8.1",
            "h1:G6ejGepgYHlQq8w4lac6YGXNfY4LVhuBG73RDnCzoo4=",
        ),
        (
            "example.com/hello",
            "v1.1.0",
            "example.com/hello/@v/v1.1.0",
            "h1:lIRQ4QtibrM2TEZySxJKHBjBeJjMs8hUBnoPdS47c5g=",
        ),
        (
            "github.com/BurntSushi/toml",
            "v1.2.0",
            "github.com/!burnt!sushi/toml/@v/v1.2.0",
            "h1:EYV7N5rB0mPYpkPviF6S1rrC+Binwuy0Dh1W9uiBClc=",
        ),
    ];
    for (module, version, stem, h1) in golden {
        let stem = corpus().join(stem);
        let go_mod = std::fs::read(with_ext(&stem, "mod")).unwrap();
        let zip = std::fs::File::open(with_ext(&stem, "zip")).unwrap();
        assert_eq!(
            check_zip(zip, module, version, &go_mod).unwrap().h1,
            h1,
            "{module}@{version}"
        );
    }
}

fn zip_of(entries: &[(&str, &[u8])], symlink: Option<&str>) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(body).unwrap();
    }
    if let Some(link) = symlink {
        zip.add_symlink(
            link,
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn hostile_zips_are_refused() {
    let m = "example.com/x";
    let v = "v1.0.0";
    let go_mod: &[u8] = b"module example.com/x\n";
    let check = |bytes: Vec<u8>| check_zip(Cursor::new(bytes), m, v, go_mod);
    assert!(check(zip_of(
        &[
            ("example.com/x@v1.0.0/go.mod", go_mod),
            ("example.com/x@v1.0.0/a.go", b"package x")
        ],
        None
    ))
    .is_ok());
    assert!(
        check(zip_of(&[("example.com/x@v1.0.0/a.go", b"package x")], None)).is_ok(),
        "synthesized .mod"
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "zip slip",
            zip_of(&[("example.com/x@v1.0.0/../../evil.go", b"x")], None),
        ),
        ("absolute", zip_of(&[("/etc/passwd", b"x")], None)),
        (
            "wrong prefix",
            zip_of(&[("example.com/y@v1.0.0/a.go", b"x")], None),
        ),
        (
            "wrong version",
            zip_of(&[("example.com/x@v1.0.1/a.go", b"x")], None),
        ),
        (
            "case fold",
            zip_of(
                &[
                    ("example.com/x@v1.0.0/A.go", b"x"),
                    ("example.com/x@v1.0.0/a.go", b"x"),
                ],
                None,
            ),
        ),
        (
            "backslash",
            zip_of(&[("example.com/x@v1.0.0/a\\..\\b.go", b"x")], None),
        ),
        (
            "go.mod mismatch",
            zip_of(
                &[("example.com/x@v1.0.0/go.mod", b"module example.com/evil\n")],
                None,
            ),
        ),
        (
            "nested go.mod",
            zip_of(
                &[(
                    "example.com/x@v1.0.0/sub/go.mod",
                    b"module example.com/x/sub\n",
                )],
                None,
            ),
        ),
        ("symlink", zip_of(&[], Some("example.com/x@v1.0.0/link"))),
        ("not a zip", b"PK\x03\x04garbage".to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in cases {
        assert!(check(bytes).is_err(), "{what} accepted");
    }
    let truncated = {
        let full = std::fs::read(corpus().join("github.com/gin-gonic/gin/@v/v1.8.1.zip")).unwrap();
        full[..full.len() / 2].to_vec()
    };
    let gin_mod = std::fs::read(corpus().join("github.com/gin-gonic/gin/@v/v1.8.1.mod")).unwrap();
    assert!(matches!(
        check_zip(
            Cursor::new(truncated),
            "github.com/gin-gonic/gin",
            "v1.8.1",
            &gin_mod
        ),
        Err(ZipError::Malformed(_))
    ));
}

#[test]
fn zip_bombs_fail_at_the_limit_without_trusting_declared_sizes() {
    // 600 MiB of zeros compresses to well under 1 MiB.
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().large_file(true);
    zip.start_file("example.com/x@v1.0.0/bomb", options)
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..600 {
        zip.write_all(&zeros).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    assert!(bytes.len() < 2 << 20);
    let err = check_zip(
        Cursor::new(bytes),
        "example.com/x",
        "v1.0.0",
        b"module example.com/x\n",
    )
    .unwrap_err();
    assert!(matches!(err, ZipError::TooLarge { .. }), "{err}");
}

/// Copies a real corpus zip entry by entry, letting `change` drop, rename or add entries.
fn rewrite(
    source: &Path,
    change: impl Fn(&str) -> Option<String>,
    extra: &[(&str, &[u8])],
) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(source).unwrap()).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let file = archive.by_index_raw(i).unwrap();
        if let Some(name) = change(file.name()) {
            out.raw_copy_file_rename(file, name).unwrap();
        }
    }
    for (name, body) in extra {
        out.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(body).unwrap();
    }
    out.finish().unwrap().into_inner()
}

#[test]
fn real_zips_with_one_hostile_change_are_refused() {
    let (m, v) = ("example.com/hello", "v1.1.0");
    let stem = corpus().join("example.com/hello/@v/v1.1.0");
    let source = with_ext(&stem, "zip");
    let go_mod = std::fs::read(with_ext(&stem, "mod")).unwrap();
    let check = |bytes: Vec<u8>| check_zip(Cursor::new(bytes), m, v, &go_mod);
    let golden = "h1:lIRQ4QtibrM2TEZySxJKHBjBeJjMs8hUBnoPdS47c5g=";
    let same = rewrite(&source, |n| Some(n.to_string()), &[]);
    assert_eq!(
        check(same).unwrap().h1,
        golden,
        "a faithful copy keeps its h1"
    );

    let prefix = format!("{m}@{v}/");
    let first_file = {
        let archive = zip::ZipArchive::new(std::fs::File::open(&source).unwrap()).unwrap();
        let names: Vec<String> = archive.file_names().map(str::to_string).collect();
        names
            .into_iter()
            .find(|n| !n.ends_with('/') && !n.ends_with("go.mod"))
            .unwrap()
    };
    let upper = first_file.replacen(&prefix, "", 1).to_uppercase();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "../evil",
            rewrite(
                &source,
                |n| Some(n.to_string()),
                &[(&format!("{prefix}../evil"), b"x")],
            ),
        ),
        (
            "wrong prefix",
            rewrite(&source, |n| Some(n.replacen(v, "v1.0.0", 1)), &[]),
        ),
        (
            "case-fold duplicate",
            rewrite(
                &source,
                |n| Some(n.to_string()),
                &[(&format!("{prefix}{upper}"), b"x")],
            ),
        ),
        (
            "different go.mod",
            rewrite(
                &source,
                |n| (!n.ends_with("/go.mod")).then(|| n.to_string()),
                &[(
                    &format!("{prefix}go.mod"),
                    b"module example.com/hello\n// changed\n",
                )],
            ),
        ),
        (
            "go.mod removed",
            rewrite(
                &source,
                |n| (!n.ends_with("/go.mod")).then(|| n.to_string()),
                &[],
            ),
        ),
    ];
    for (what, bytes) in cases {
        assert!(check(bytes).is_err(), "{what} accepted");
    }
}
