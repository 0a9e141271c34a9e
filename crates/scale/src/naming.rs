//! The synthetic corpus: version number `i` is one module version, its three artifacts'
//! bytes a pure function of `i`, so the generator, the hit checker and a re-run agree
//! without any shared state.
//!
//! Versions are grouped [`VERSIONS_PER_MODULE`] to a module (`scale.example/m0000012`
//! holds `v1.0.0` … `v1.0.9`), so listing a module means something and a module's `.mod`
//! is one blob shared by its versions, as on a real proxy.

use std::io::Write;

use goproxy_protocol::dirhash::{hash1, FileDigest};
use goproxy_protocol::index::ArtifactKind;
use sha2::{Digest, Sha256};

/// The host every synthetic module path starts with.
pub const MODULE_HOST: &str = "scale.example";
/// Versions of each synthetic module.
pub const VERSIONS_PER_MODULE: u64 = 10;
/// Index entries of one version: its `.info`, `.mod` and `.zip`.
pub const ARTIFACTS_PER_VERSION: u64 = 3;
/// When version 0 was published (2024-01-01T00:00:00Z, seconds since the Unix epoch);
/// version `i` was published `i` seconds later, so every `.info` is its own blob, as on a
/// real proxy.
pub const FIRST_VERSION_SECS: u64 = 1_704_067_200;
/// The kinds of a version, in the order the generator commits them.
pub const KINDS: [ArtifactKind; 3] = [ArtifactKind::Info, ArtifactKind::Mod, ArtifactKind::Zip];

/// Versions needed for an index of at least `entries` entries.
pub fn versions_for(entries: u64) -> u64 {
    entries.div_ceil(ARTIFACTS_PER_VERSION)
}

/// The module path of version `i`.
pub fn module(i: u64) -> String {
    format!("{MODULE_HOST}/m{:07}", i / VERSIONS_PER_MODULE)
}

/// The version string of version `i`.
pub fn version(i: u64) -> String {
    format!("v1.0.{}", i % VERSIONS_PER_MODULE)
}

/// The GOPROXY path (no leading slash) of one artifact of version `i`. Synthetic module
/// paths are lower case, so they need no case-encoding.
pub fn artifact_path(i: u64, kind: ArtifactKind) -> String {
    format!("{}/@v/{}.{}", module(i), version(i), kind.extension())
}

/// Seconds since the Unix epoch when version `i` was published.
pub fn published_secs(i: u64) -> u64 {
    FIRST_VERSION_SECS + i
}

/// When version `i` was published, RFC 3339 in UTC (its `.info` `Time`).
pub fn version_time(i: u64) -> String {
    let secs = published_secs(i);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The `.info` of version `i`, as the go command reads it.
pub fn info(i: u64) -> Vec<u8> {
    format!(
        r#"{{"Version":"{}","Time":"{}"}}"#,
        version(i),
        version_time(i)
    )
    .into_bytes()
}

/// The `go.mod` of version `i` (the same for every version of a module).
pub fn go_mod(i: u64) -> Vec<u8> {
    format!("module {}\n\ngo 1.21\n", module(i)).into_bytes()
}

/// The files of version `i`'s zip: names with the `module@version/` prefix, contents.
fn zip_files(i: u64) -> [(String, Vec<u8>); 2] {
    let prefix = format!("{}@{}", module(i), version(i));
    let package = format!("m{:07}", i / VERSIONS_PER_MODULE);
    let source = format!(
        "package {package}\n\n// Version is this module version.\nconst Version = \"{}\"\n",
        version(i)
    );
    [
        (format!("{prefix}/go.mod"), go_mod(i)),
        (format!("{prefix}/{package}.go"), source.into_bytes()),
    ]
}

/// Version `i`'s module zip (stored, not deflated: a few hundred bytes) and its `h1:` hash.
pub fn zip(i: u64) -> (Vec<u8>, String) {
    let files = zip_files(i);
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // A fixed time, so the bytes are the same on every run.
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (name, body) in &files {
        writer
            .start_file(name.as_str(), options)
            .and_then(|()| writer.write_all(body).map_err(Into::into))
            .expect("writing a zip in memory");
    }
    let bytes = writer
        .finish()
        .expect("finishing a zip in memory")
        .into_inner();
    let digests = files
        .iter()
        .map(|(name, body)| FileDigest {
            name: name.clone(),
            sha256: Sha256::digest(body).into(),
        })
        .collect();
    let h1 = hash1(digests).expect("synthetic names have no newline");
    (bytes, h1)
}

/// The bytes of one artifact of version `i`.
pub fn artifact(i: u64, kind: ArtifactKind) -> Vec<u8> {
    match kind {
        ArtifactKind::Info => info(i),
        ArtifactKind::Mod => go_mod(i),
        _ => zip(i).0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn versions_group_into_modules_and_round_up() {
        assert_eq!(module(0), "scale.example/m0000000");
        assert_eq!(module(123), "scale.example/m0000012");
        assert_eq!(version(123), "v1.0.3");
        assert_eq!(
            artifact_path(123, ArtifactKind::Zip),
            "scale.example/m0000012/@v/v1.0.3.zip"
        );
        assert_eq!(versions_for(10_000), 3334);
        assert_eq!(versions_for(9), 3);
        assert_eq!(go_mod(120), go_mod(129));
        assert_ne!(info(120), info(121));
    }

    #[test]
    fn artifacts_are_valid_and_the_same_on_every_call() {
        let info: serde_json::Value = serde_json::from_slice(&info(7)).unwrap();
        assert_eq!(info["Version"], "v1.0.7");
        assert_eq!(info["Time"], "2024-01-01T00:00:07Z");
        assert_eq!(version_time(0), "2024-01-01T00:00:00Z");
        // Leap day, end of a leap year, a later century.
        assert_eq!(version_time(59 * 86_400 + 3_723), "2024-02-29T01:02:03Z");
        assert_eq!(version_time(366 * 86_400 - 1), "2024-12-31T23:59:59Z");
        assert_eq!(
            version_time((1 << 32) - FIRST_VERSION_SECS),
            "2106-02-07T06:28:16Z"
        );
        assert!(goproxy_protocol::path::check_path(&module(7)).is_ok());

        let (bytes, h1) = zip(7);
        assert_eq!(zip(7), (bytes.clone(), h1.clone()));
        assert!(h1.starts_with("h1:"));
        assert_ne!(zip(8).0, bytes);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<String> = archive.file_names().map(str::to_string).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "scale.example/m0000000@v1.0.7/go.mod",
                "scale.example/m0000000@v1.0.7/m0000000.go"
            ]
        );
        let mut go_mod_text = String::new();
        archive
            .by_name("scale.example/m0000000@v1.0.7/go.mod")
            .unwrap()
            .read_to_string(&mut go_mod_text)
            .unwrap();
        assert_eq!(go_mod_text.as_bytes(), go_mod(7));
    }
}
