//! One test per `golang.org/x/mod/zip` rule (and per place where the `zip` crate reads an
//! archive differently from Go's `archive/zip`), on small zips built here.

use std::io::{Cursor, Write};

use goproxy_protocol::zipcheck::{check_zip, ZipError, MAX_GO_MOD_SIZE};
use zip::write::{FullFileOptions, SimpleFileOptions};
use zip::CompressionMethod;

const MODULE: &str = "example.com/x";
const VERSION: &str = "v1.0.0";
const PREFIX: &str = "example.com/x@v1.0.0/";
const GO_MOD: &[u8] = b"module example.com/x\n";

/// A stored (uncompressed) zip of `PREFIX + name` entries; names ending in `/` are dirs.
fn build(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    for (name, body) in entries {
        let full = format!("{PREFIX}{name}");
        if let Some(dir) = full.strip_suffix('/') {
            zip.add_directory(dir, options).unwrap();
        } else {
            zip.start_file(full, options).unwrap();
            zip.write_all(body).unwrap();
        }
    }
    zip.finish().unwrap().into_inner()
}

fn check(bytes: Vec<u8>) -> Result<goproxy_protocol::zipcheck::ZipSummary, ZipError> {
    check_zip(Cursor::new(bytes), MODULE, VERSION, GO_MOD)
}

/// Replaces every occurrence of `from` by `to` (same length) in the raw zip bytes.
fn patch(mut bytes: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut found = 0;
    for at in 0..=bytes.len() - from.len() {
        if &bytes[at..at + from.len()] == from {
            bytes[at..at + from.len()].copy_from_slice(to);
            found += 1;
        }
    }
    assert!(found > 0, "pattern not found");
    bytes
}

#[test]
fn a_plain_module_with_directories_passes_and_counts_every_entry() {
    let summary = check(build(&[
        ("go.mod", GO_MOD),
        ("sub/", b""),
        ("sub/a.go", b"package sub\n"),
        ("LICENSE", b"MIT\n"),
        (
            "backup~1.txt",
            b"Windows short names only matter in import paths\n",
        ),
    ]))
    .unwrap();
    assert_eq!(summary.files, 5);
    assert_eq!(summary.uncompressed_bytes, 21 + 12 + 4 + 48);
    assert!(summary.h1.starts_with("h1:"));
}

#[test]
fn name_collisions_are_refused() {
    let cases: [&[(&str, &[u8])]; 5] = [
        &[("A.go", b""), ("a.go", b"")],
        &[("Sub/a.go", b""), ("sub/b.go", b"")],
        &[("a", b""), ("a/b.go", b"")],
        &[("a/", b""), ("A", b"")],
        &[("\u{17f}.go", b""), ("s.go", b"")], // long s folds to s, as in Go.
    ];
    for entries in cases {
        assert!(check(build(entries)).is_err(), "{entries:?} accepted");
    }
    assert!(
        check(build(&[("\u{df}.go", b""), ("ss.go", b"")])).is_ok(),
        "sharp s is not ss under simple folding"
    );
}

#[test]
fn duplicate_entries_merged_by_the_zip_crate_are_still_seen() {
    let bytes = patch(build(&[("a.go", b"1"), ("b.go", b"2")]), b"/b.go", b"/a.go");
    assert_eq!(check(bytes).unwrap_err(), ZipError::Duplicate);
}

#[test]
fn go_mod_only_at_the_root_and_in_lower_case() {
    for name in [
        "sub/go.mod",
        "vendor/go.mod",
        "sub/GO.MOD",
        "GO.MOD",
        "Go.mod",
    ] {
        let err = check(build(&[(name, GO_MOD)])).unwrap_err();
        assert!(matches!(err, ZipError::BadEntry { .. }), "{name}: {err}");
    }
}

#[test]
fn the_root_go_mod_must_equal_the_mod_file() {
    let with = |go_mod: &[u8]| {
        check_zip(
            Cursor::new(build(&[("go.mod", GO_MOD)])),
            MODULE,
            VERSION,
            go_mod,
        )
    };
    assert!(with(GO_MOD).is_ok());
    assert_eq!(
        with(b"module example.com/x\n\n").unwrap_err(),
        ZipError::GoModMismatch
    );
    // Without a go.mod in the zip, `.mod` must be the synthesized file.
    let without = |go_mod: &[u8]| {
        check_zip(
            Cursor::new(build(&[("a.go", b"package x\n")])),
            MODULE,
            VERSION,
            go_mod,
        )
    };
    assert!(without(b"module example.com/x").is_ok());
    assert!(without(b"module \"example.com/x\"\n").is_ok());
    for bad in [
        &b"module example.com/x\nrequire example.com/y v1.0.0\n"[..],
        b"moduleexample.com/x\n",
        b"module example.com/y\n",
        b"",
    ] {
        assert!(matches!(without(bad), Err(ZipError::NotSynthesized(_))));
    }
}

#[test]
fn the_module_version_must_be_valid_for_the_path() {
    for (module, version) in [
        ("example.com/x", "v2.0.0"),
        ("example.com/x", "v1.0"),
        ("Example.com/x", "v1.0.0"),
    ] {
        let err = check_zip(Cursor::new(build(&[])), module, version, GO_MOD).unwrap_err();
        assert!(
            matches!(err, ZipError::Module(_)),
            "{module}@{version}: {err}"
        );
    }
}

#[test]
fn bad_names_are_refused() {
    for name in [
        "a\nb.go",
        "a/./b.go",
        "a//b.go",
        "a:b.go",
        "a\\b.go",
        "a/../b.go",
    ] {
        let err = check(build(&[(name, b"")])).unwrap_err();
        assert!(matches!(err, ZipError::BadEntry { .. }), "{name:?}: {err}");
    }
    let not_utf8 = patch(build(&[("zz.go", b"")]), b"zz.go", b"\xff\xfe.go");
    assert!(matches!(check(not_utf8), Err(ZipError::BadEntry { .. })));
}

#[test]
fn declared_sizes_that_lie_are_refused() {
    let honest = build(&[("a.go", b"hello")]);
    assert!(check(honest.clone()).is_ok());
    // The central directory's uncompressed size (offset 24 in its record) says 4 or 6.
    let central = honest.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    for lie in [4u32, 6] {
        let mut bytes = honest.clone();
        bytes[central + 24..central + 28].copy_from_slice(&lie.to_le_bytes());
        assert!(check(bytes).is_err(), "declared {lie} accepted");
    }
}

#[test]
fn oversized_go_mod_and_license_are_refused() {
    let big = vec![b'\n'; MAX_GO_MOD_SIZE as usize + 1];
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file(format!("{PREFIX}LICENSE"), SimpleFileOptions::default())
        .unwrap();
    zip.write_all(&big).unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    assert!(matches!(check(bytes), Err(ZipError::TooLarge { .. })));
    let mut go_mod = GO_MOD.to_vec();
    go_mod.extend_from_slice(&big);
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file(format!("{PREFIX}go.mod"), SimpleFileOptions::default())
        .unwrap();
    zip.write_all(&go_mod).unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let err = check_zip(Cursor::new(bytes), MODULE, VERSION, &go_mod).unwrap_err();
    assert!(matches!(err, ZipError::TooLarge { .. }), "{err}");
}

/// CRC-32 (IEEE), for the Unicode Path field's check of the raw name.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[test]
fn unicode_path_extra_fields_are_refused() {
    // The writer refuses to emit 0x7075, so write a private field id and patch it.
    const PLACEHOLDER_ID: u16 = 0xcafe;
    let raw = format!("{PREFIX}a.go");
    let mut field = vec![1u8];
    field.extend_from_slice(&crc32(raw.as_bytes()).to_le_bytes());
    field.extend_from_slice(format!("{PREFIX}b.go").as_bytes());
    let len = u16::try_from(field.len()).unwrap();
    let mut options = FullFileOptions::default();
    options
        .add_extra_data(PLACEHOLDER_ID, field.into_boxed_slice(), true)
        .unwrap();
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file(raw, options).unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    assert!(check(bytes.clone()).is_ok(), "an unknown field is harmless");
    let mut header = PLACEHOLDER_ID.to_le_bytes().to_vec();
    header.extend_from_slice(&len.to_le_bytes());
    let mut unicode = 0x7075u16.to_le_bytes().to_vec();
    unicode.extend_from_slice(&len.to_le_bytes());
    let err = check(patch(bytes, &header, &unicode)).unwrap_err();
    assert!(
        matches!(&err, ZipError::BadEntry { reason, .. } if reason.contains("Unicode")),
        "{err}"
    );
}
