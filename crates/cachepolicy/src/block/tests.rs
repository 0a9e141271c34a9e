use super::*;

fn range(text: &str) -> VersionRange {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} refused: {e}"))
}

fn rule(target: &str) -> BlockRule {
    BlockRule::parse(target, "CVE-2024-0001").unwrap()
}

#[test]
fn upper_bounds_are_exact_at_the_edge() {
    let lt = range("<v1.2.5");
    assert!(lt.matches("v1.2.4"));
    assert!(lt.matches("v0.0.1"));
    assert!(!lt.matches("v1.2.5"));
    assert!(!lt.matches("v1.2.6"));
    let le = range("<=v1.2.4");
    assert!(le.matches("v1.2.4"));
    assert!(!le.matches("v1.2.5"));
    let gt = range(">v1.0.0");
    assert!(!gt.matches("v1.0.0"));
    assert!(gt.matches("v1.0.1"));
    let between = range(">=v1.0.0,<v1.2.5");
    for v in ["v1.0.0", "v1.1.9", "v1.2.4"] {
        assert!(between.matches(v), "{v}");
    }
    for v in ["v0.9.9", "v1.2.5", "v2.0.0+incompatible"] {
        assert!(!between.matches(v), "{v}");
    }
}

#[test]
fn prereleases_sort_before_their_release() {
    let lt = range("<v1.2.5");
    assert!(lt.matches("v1.2.5-rc.1"));
    assert!(lt.matches("v1.2.5-alpha"));
    let ge = range(">=v1.2.5");
    assert!(!ge.matches("v1.2.5-rc.1"));
    assert!(range(">=v1.2.5-rc.1,<v1.2.5").matches("v1.2.5-rc.2"));
    assert!(
        range("<v1.2.5-rc.10").matches("v1.2.5-rc.9"),
        "numeric ids compare as numbers"
    );
}

#[test]
fn pseudo_versions_order_by_their_base() {
    // After tag v1.2.4, before any v1.2.5.
    let after_tag = "v1.2.5-0.20240101000000-abcdefabcdef";
    assert!(range("<v1.2.5").matches(after_tag));
    assert!(range(">v1.2.4").matches(after_tag));
    assert!(!range(">=v1.2.5").matches(after_tag));
    // No tag at all: before every release.
    let untagged = "v0.0.0-20240101000000-abcdefabcdef";
    assert!(range("<v0.1.0").matches(untagged));
    let exact = range(untagged);
    assert!(exact.matches(untagged));
    assert!(!exact.matches("v0.0.0-20240101000001-abcdefabcdef"));
    assert!(
        range(">=v0.0.0-20240101000000-abcdefabcdef").matches("v0.0.0-20240102000000-000000000000")
    );
}

#[test]
fn incompatible_ignores_build_metadata() {
    let r = range(">=v2.0.0+incompatible,<v3.0.0+incompatible");
    assert!(r.matches("v2.5.0+incompatible"));
    assert!(!r.matches("v3.0.0+incompatible"));
    assert!(!range("<v2.0.0").matches("v2.0.0+incompatible"));
    assert!(range("v2.0.0+incompatible").matches("v2.0.0+incompatible"));
    assert!(range("<v3.0.0").matches("v2.1.0+incompatible"));
}

#[test]
fn non_semver_never_matches() {
    let everything = range(">=v0.0.0");
    for v in [
        "", "latest", "master", "1.2.3", "v1.2.3.4", "v01.0.0", "v1.0.0-", "../v1",
    ] {
        assert!(!everything.matches(v), "{v:?}");
        assert!(!range("<v99.0.0").matches(v), "{v:?}");
    }
}

#[test]
fn ranges_display_in_one_canonical_form() {
    let cases = [
        ("v1.2.3", "v1.2.3"),
        ("=v1.2.3", "v1.2.3"),
        ("<v1.2.5", "<v1.2.5"),
        ("<=v1.2.4", "<=v1.2.4"),
        (">v1.0.0", ">v1.0.0"),
        (">=v1.0.0,<v1.2.5", ">=v1.0.0,<v1.2.5"),
        ("<v1.2.5,>=v1.0.0", ">=v1.0.0,<v1.2.5"),
        (" >= v1.0.0 , <v1.2.5 ", ">=v1.0.0,<v1.2.5"),
        ("<v2.0.0,<v2.0.0", "<v2.0.0"),
        ("<=v1.0.0,>=v1.0.0", ">=v1.0.0,<=v1.0.0"),
        ("v2.0.0+incompatible", "v2.0.0+incompatible"),
    ];
    for (input, shown) in cases {
        let parsed = range(input);
        assert_eq!(parsed.to_string(), shown, "{input:?}");
        assert_eq!(range(shown), parsed, "{shown:?} round trip");
    }
}

/// Whether an error is the expected kind.
type IsExpected = fn(&BlockError) -> bool;

#[test]
fn bad_ranges_say_why() {
    use BlockError as E;
    let cases: &[(&str, IsExpected)] = &[
        ("", |e| matches!(e, E::EmptyRange)),
        ("  ", |e| matches!(e, E::EmptyRange)),
        (">=v1.0.0,", |e| matches!(e, E::EmptyComparator { .. })),
        (",<v1.0.0", |e| matches!(e, E::EmptyComparator { .. })),
        ("<", |e| matches!(e, E::EmptyComparator { .. })),
        ("latest", |e| matches!(e, E::NotSemver { .. })),
        ("<1.2.3", |e| matches!(e, E::NotSemver { .. })),
        ("=>v1.0.0", |e| matches!(e, E::NotSemver { .. })),
        ("<<v1.0.0", |e| matches!(e, E::NotSemver { .. })),
        (
            "v1.2",
            |e| matches!(e, E::NotCanonical { canonical, .. } if canonical == "v1.2.0"),
        ),
        ("<v1.0.0+meta", |e| matches!(e, E::NotCanonical { .. })),
        (">v1.2.0,<v1.0.0", |e| matches!(e, E::Unsatisfiable { .. })),
        (">v1.0.0,<v1.0.0", |e| matches!(e, E::Unsatisfiable { .. })),
        (">=v1.0.0,<v1.0.0", |e| matches!(e, E::Unsatisfiable { .. })),
        ("v1.0.0,v1.1.0", |e| matches!(e, E::Unsatisfiable { .. })),
        ("v1.0.0,>v1.0.0", |e| matches!(e, E::Unsatisfiable { .. })),
    ];
    for (input, expected) in cases {
        let err = input.parse::<VersionRange>().expect_err(input);
        assert!(expected(&err), "{input:?}: {err:?}");
        assert!(!err.to_string().is_empty());
    }
    let many = [">=v1.0.0"; MAX_COMPARATORS + 1].join(",");
    assert!(matches!(
        many.parse::<VersionRange>(),
        Err(E::TooManyComparators { count, .. }) if count == MAX_COMPARATORS + 1
    ));
    assert!([">=v1.0.0"; MAX_COMPARATORS]
        .join(",")
        .parse::<VersionRange>()
        .is_ok());
    let long = format!("<v1.0.0-{}", "a".repeat(MAX_RANGE_LEN));
    assert!(matches!(
        long.parse::<VersionRange>(),
        Err(E::RangeTooLong { .. })
    ));
    // `>=v1,<=v1` is a single version, not empty.
    assert!(range(">=v1.0.0,<=v1.0.0").matches("v1.0.0"));
}

#[test]
fn targets_parse_and_round_trip() {
    for text in [
        "example.com/m",
        "example.com/m@v1.2.3",
        "example.com/m@<v1.2.5",
        "example.com/m@>=v1.0.0,<v1.2.5",
        "example.com/m/v2@<=v2.4.0",
        "gopkg.in/yaml.v3@<v3.0.1",
        "github.com/Azure/go-autorest@v14.2.0+incompatible",
        "example.com/m@v0.0.0-20240101000000-abcdefabcdef",
    ] {
        let target: BlockTarget = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(target.to_string(), text);
        let rule = BlockRule::parse(text, "bad release").unwrap();
        assert_eq!(rule.to_string(), text);
        assert_eq!(
            BlockRule::parse(&rule.to_string(), &rule.reason).unwrap(),
            rule
        );
        assert!(rule.is_target(&target));
        assert_eq!(rule.target(), target);
    }
    let t: BlockTarget = "example.com/m@=v1.2.3".parse().unwrap();
    assert_eq!(t.to_string(), "example.com/m@v1.2.3");
}

#[test]
fn bad_targets_and_reasons_are_refused() {
    for text in [
        "",
        "example.com/m@",
        "Example.com/m",
        "nodot/m",
        "example.com/m@latest",
        "example.com//m",
    ] {
        assert!(text.parse::<BlockTarget>().is_err(), "{text:?}");
    }
    assert!(matches!(
        "bad path".parse::<BlockTarget>(),
        Err(BlockError::Module(_))
    ));
    let err = |reason: &str| BlockRule::parse("example.com/m", reason).unwrap_err();
    assert_eq!(err(""), BlockError::EmptyReason);
    assert_eq!(err("tab\there"), BlockError::ReasonControl('\t'));
    assert_eq!(err("   "), BlockError::EmptyReason);
    assert_eq!(err("line\nbreak"), BlockError::ReasonControl('\n'));
    assert_eq!(err("bell\u{7}"), BlockError::ReasonControl('\u{7}'));
    assert_eq!(err("c1\u{85}next"), BlockError::ReasonControl('\u{85}'));
    let long = "x".repeat(MAX_REASON_BYTES + 1);
    assert!(
        matches!(err(&long), BlockError::ReasonTooLong { len, .. } if len == MAX_REASON_BYTES + 1)
    );
    let ok = BlockRule::parse(
        "example.com/m",
        &format!("  {}  ", "é".repeat(MAX_REASON_BYTES / 2)),
    )
    .unwrap();
    assert_eq!(
        ok.reason.len(),
        MAX_REASON_BYTES,
        "trimmed, multi-byte counted in bytes"
    );
    assert!(ok.validate().is_ok());
}

#[test]
fn rules_deserialize_only_when_valid() {
    let rule = BlockRule::parse("example.com/m@>=v1.0.0,<v1.2.5", "CVE-2024-0001").unwrap();
    let json = serde_json::to_string(&rule).unwrap();
    assert_eq!(
        json,
        r#"{"module":"example.com/m","range":">=v1.0.0,<v1.2.5","reason":"CVE-2024-0001"}"#
    );
    assert_eq!(serde_json::from_str::<BlockRule>(&json).unwrap(), rule);
    for bad in [
        r#"{"module":"nodot","range":null,"reason":"r"}"#,
        r#"{"module":"example.com/m","range":"<latest","reason":"r"}"#,
        r#"{"module":"example.com/m","range":null,"reason":""}"#,
    ] {
        assert!(serde_json::from_str::<BlockRule>(bad).is_err(), "{bad}");
    }
}

#[test]
fn unranged_rules_block_everything_ranged_only_versions() {
    let list: BlockList = [rule("example.com/all"), rule("example.com/some@<v1.2.5")]
        .into_iter()
        .collect();
    let all = list.check("example.com/all", None).expect("list blocked");
    assert_eq!(all.module, "example.com/all");
    assert!(list.check("example.com/all", Some("v9.9.9")).is_some());
    assert!(list
        .check("example.com/all", Some("not-a-version"))
        .is_some());
    assert!(list.check("example.com/some", Some("v1.2.4")).is_some());
    assert!(list.check("example.com/some", Some("v1.2.5")).is_none());
    assert!(
        list.check("example.com/some", None).is_none(),
        "lists are not blocked by a range"
    );
    assert!(list.check("example.com/some", Some("latest")).is_none());
    assert!(list.check("example.com/other", Some("v1.0.0")).is_none());
    assert!(
        list.check("example.com/All", None).is_some(),
        "case variants are blocked too (a case-insensitive host serves the same code)"
    );
    assert!(
        list.check("example.com/all/sub", None).is_none(),
        "no prefix matching"
    );
}

#[test]
fn the_reported_rule_does_not_depend_on_insertion_order() {
    let a = rule("example.com/m@<v2.0.0");
    let b = rule("example.com/m@>=v1.0.0,<v1.5.0");
    let ab: BlockList = [a.clone(), b.clone()].into_iter().collect();
    let ba: BlockList = [b, a].into_iter().collect();
    let hit = ab.check("example.com/m", Some("v1.2.0")).unwrap();
    assert_eq!(hit, ba.check("example.com/m", Some("v1.2.0")).unwrap());
    assert_eq!(ab, ba);
    // With an unranged rule too, the broader rule answers.
    let mut list = ab.clone();
    list.insert(rule("example.com/m"));
    assert_eq!(
        list.check("example.com/m", Some("v1.2.0")).unwrap().range,
        None
    );
}

#[test]
fn insert_replaces_by_identity_and_remove_by_target() {
    let mut list = BlockList::new();
    assert!(list.is_empty());
    assert!(list.insert(rule("example.com/m@<v1.2.5")).is_none());
    assert!(list.insert(rule("example.com/m")).is_none());
    // Same comparators spelled differently: same identity, reason updated.
    let respelled = BlockRule::parse("example.com/m@<v1.2.5,<v1.2.5", "updated").unwrap();
    let old = list.insert(respelled).expect("replaced");
    assert_eq!(old.reason, "CVE-2024-0001");
    assert_eq!(list.len(), 2);
    assert_eq!(list.check("example.com/m", None).unwrap().range, None);

    let all: BlockTarget = "example.com/m".parse().unwrap();
    assert!(list.remove(&all).is_some());
    assert!(list.remove(&all).is_none());
    assert!(list.check("example.com/m", None).is_none());
    assert_eq!(
        list.check("example.com/m", Some("v1.0.0")).unwrap().reason,
        "updated"
    );
    let other: BlockTarget = "example.com/m@<v1.2.4".parse().unwrap();
    assert!(list.remove(&other).is_none());
    let ranged: BlockTarget = "example.com/m@<v1.2.5".parse().unwrap();
    assert!(list.remove(&ranged).is_some());
    assert!(list.is_empty());
    assert_eq!(list.len(), 0);
}

#[test]
fn lists_serialize_as_sorted_rules() {
    let list: BlockList = [
        rule("example.com/b@>v1.0.0"),
        rule("example.com/b"),
        rule("example.com/a@<v2.0.0"),
        rule("example.com/b@<v0.5.0"),
    ]
    .into_iter()
    .collect();
    let shown: Vec<String> = list.rules().iter().map(|r| r.to_string()).collect();
    assert_eq!(
        shown,
        [
            "example.com/a@<v2.0.0",
            "example.com/b",
            "example.com/b@<v0.5.0",
            "example.com/b@>v1.0.0"
        ]
    );
    let json = serde_json::to_string(&list).unwrap();
    assert!(json.starts_with(r#"[{"module":"example.com/a""#), "{json}");
    assert_eq!(serde_json::from_str::<BlockList>(&json).unwrap(), list);
}

#[test]
fn many_rules_on_other_modules_do_not_match() {
    let list: BlockList = (0..1000)
        .map(|i| rule(&format!("example.com/m{i}@<v1.{i}.0")))
        .collect();
    assert_eq!(list.len(), 1000);
    assert!(list.check("example.com/m500", Some("v1.499.9")).is_some());
    assert!(list.check("example.com/m500", Some("v1.500.0")).is_none());
    assert!(list.check("example.com/m1000", Some("v0.0.1")).is_none());
}

#[test]
fn a_rule_blocks_every_case_variant_of_its_path() {
    // A case-insensitive host serves example.com/Blockme (escaped example.com/!blockme) from
    // the same repository as the blocked example.com/blockme.
    let list: BlockList = vec![
        BlockRule::parse("example.com/blockme", "CVE").unwrap(),
        BlockRule::parse("github.com/Sirupsen/logrus@<v1.9.0", "renamed").unwrap(),
    ]
    .into();
    for variant in [
        "example.com/blockme",
        "example.com/Blockme",
        "EXAMPLE.com/BLOCKME",
    ] {
        assert!(list.check(variant, Some("v1.0.0")).is_some(), "{variant}");
        assert!(list.check(variant, None).is_some(), "{variant} lists");
    }
    assert!(list
        .check("github.com/sirupsen/logrus", Some("v1.8.1"))
        .is_some());
    assert!(list
        .check("github.com/sirupsen/logrus", Some("v1.9.0"))
        .is_none());
    assert!(list.check("example.com/blockme2", Some("v1.0.0")).is_none());
    let mut list = list;
    list.remove(&"example.com/blockme".parse().unwrap());
    assert!(list.check("example.com/Blockme", Some("v1.0.0")).is_none());
    assert_eq!(list.len(), 1);
}
