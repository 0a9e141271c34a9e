//! Unit tests for [`crate::artifact`].

use super::*;

#[test]
fn info_must_name_the_requested_version_with_a_valid_time() {
    let good = br#"{"Version":"v1.1.0","Time":"2022-06-01T10:00:00Z"}"#;
    assert_eq!(
        validate_info(good, "v1.1.0").unwrap().time.as_deref(),
        Some("2022-06-01T10:00:00Z")
    );
    assert!(validate_info(br#"{"Version":"v1.1.0"}"#, "v1.1.0").is_ok());
    assert!(matches!(
        validate_info(good, "v1.2.0"),
        Err(ArtifactError::WrongVersion { .. })
    ));
    assert!(validate_info(br#"{"version":"v1.1.0","time":null}"#, "v1.1.0").is_ok());
    assert!(validate_info(
        br#"{"Version":"v1.1.0","Origin":{"VCS":"git","Hash":"abc"}}"#,
        "v1.1.0"
    )
    .is_ok());
    for bad in [
        &b"[]"[..],
        br#"["v1.1.0", null]"#,
        br#"{"Version":1}"#,
        br#"{"Version":"v1.1.0","version":"v1.1.0"}"#,
        br#"{"Version":"v1.1.0","Time":5}"#,
        br#"{"Time":"2022-06-01T10:00:00Z"}"#,
        b"",
        b"\xff",
    ] {
        assert!(
            validate_info(bad, "v1.1.0").is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(validate_info(br#"{"Version":"v1.1.0","Time":"yesterday"}"#, "v1.1.0").is_err());
    assert!(validate_info(&vec![b' '; 70_000], "v1.1.0").is_err());
    assert!(is_rfc3339("2019-10-15T21:35:14.123+02:00"));
    assert!(!is_rfc3339("2019-10-15 21:35:14Z"));
    for bad in [
        "2019-13-15T21:35:14Z",
        "2019-10-00T21:35:14Z",
        "2019-10-15T24:00:00Z",
        "2019-10-15T21:60:14Z",
        "2019-10-15T21:35:14",
        "2019-10-15T21:35:14.Z",
        "2019-10-15T21:35:14+2:00",
        "2019-10-15T21:35:14+24:00",
        "2019-1é-15T21:35:14Z",
        "",
    ] {
        assert!(!is_rfc3339(bad), "{bad}");
    }
}

#[test]
fn mod_must_declare_the_module() {
    assert!(validate_mod(
        b"// comment\nmodule example.com/x // trailing\n\ngo 1.19\n",
        "example.com/x"
    )
    .is_ok());
    assert!(validate_mod(b"module \"example.com/x\"\n", "example.com/x").is_ok());
    assert!(validate_mod(b"module (\n\texample.com/x\n)\n", "example.com/x").is_ok());
    assert!(matches!(
        validate_mod(b"module example.com/y\n", "example.com/x"),
        Err(ArtifactError::WrongModule { .. })
    ));
    assert!(matches!(
        validate_mod(b"go 1.19\n", "example.com/x"),
        Err(ArtifactError::NoModule)
    ));
    assert!(matches!(
        validate_mod(b"modulex example.com/x\n", "example.com/x"),
        Err(ArtifactError::NoModule)
    ));
    assert!(validate_mod(b"module `example.com/x`\n", "example.com/x").is_ok());
    assert!(validate_mod(b"module\texample.com/x\r\n", "example.com/x").is_ok());
    for no_module in [
        &b"module\"example.com/x\"\n"[..],
        b"module\n",
        b"// module example.com/x\n",
        b"module \"example.com/x\n",
        b"module (\n)\n",
    ] {
        assert!(
            validate_mod(no_module, "example.com/x").is_err(),
            "{}",
            String::from_utf8_lossy(no_module)
        );
    }
    assert!(matches!(
        validate_mod(&[0xff, 0xfe], "example.com/x"),
        Err(ArtifactError::NotUtf8)
    ));
}
