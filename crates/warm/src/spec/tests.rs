use super::*;

fn target(text: &str) -> Target {
    Target::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn line_of(err: &SpecError) -> usize {
    match err {
        SpecError::Line { line, .. } | SpecError::TooManyTargets { line, .. } => *line,
        other => panic!("no line in {other:?}"),
    }
}

#[test]
fn targets_accept_exact_versions_only() {
    for ok in [
        "golang.org/x/text@v0.7.0",
        "gopkg.in/check.v1@v1.0.0-20201130134442-10cb98267c6c",
        "github.com/BurntSushi/toml@v1.2.0",
        "example.com/x@v2.0.0+incompatible",
        "example.com/x/v2@v2.1.0-rc.1",
        "example.com/x@v0.0.0-20220101000000-abcdefabcdef",
    ] {
        assert_eq!(target(ok).to_string(), ok);
    }
    let cases = [
        ("example.com/x@latest", "queries such as `latest`"),
        ("example.com/x@master", "not a version"),
        ("example.com/x@v1", "did you mean v1.0.0"),
        ("example.com/x@v1.2", "did you mean v1.2.0"),
        ("example.com/x@v1.2.3+meta", "did you mean v1.2.3"),
        ("../x@v1.0.0", "malformed module path"),
        ("example.com/x", "expected MODULE@VERSION"),
        ("example.com/x@", "not a version"),
        ("@v1.0.0", "malformed module path"),
        ("example.com/x@v2.0.0", "should be v0 or v1"),
        ("example.com/x/v2@v1.0.0", "should be v2"),
        ("Example.com/x@v1.0.0", "first path element"),
    ];
    for (bad, why) in cases {
        let err = Target::parse(bad).expect_err(bad).to_string();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn error_messages_truncate_hostile_input() {
    let long = format!("example.com/{}@latest", "a".repeat(10_000));
    let err = Target::parse(&long).unwrap_err().to_string();
    assert!(err.len() < 1_000, "{} bytes", err.len());
}

#[test]
fn artifacts_set() {
    let set: Artifacts = [Artifact::Zip, Artifact::Info].into_iter().collect();
    assert!(set.contains(Artifact::Zip) && !set.contains(Artifact::Mod));
    assert_eq!(
        set.iter().collect::<Vec<_>>(),
        [Artifact::Info, Artifact::Zip]
    );
    assert_eq!(set.with(Artifact::Mod), Artifacts::ALL);
    assert_eq!(Artifacts::MOD.union(Artifacts::NONE), Artifacts::MOD);
    assert_eq!(Artifact::Zip.to_string(), ".zip");
}

#[test]
fn go_mod_blocks_comments_quotes_and_unknown_directives() {
    let text = r#"// leading comment
module example.com/app // the main module

go 1.21
toolchain go1.21.5
godebug (
	default=go1.21
)

require github.com/a/b v1.0.0
require (
	// a comment line inside a block
	github.com/c/d v1.2.3 // indirect
	"github.com/e/f" v0.1.0
	`github.com/g/h` v2.0.0+incompatible

)
require()
retract (
	[v1.0.0, v1.0.5] // broken
	v0.9.0
)
exclude github.com/c/d v1.2.2
exclude (
	github.com/c/d v1.2.1
)
replace github.com/a/b => github.com/fork/b v1.0.1
replace github.com/c/d v1.2.3 => ../d
replace (
	github.com/e/f v0.1.0 => /abs/f
	"github.com/i/j" => ./j
)
"#;
    let go_mod = parse_go_mod(text).unwrap();
    assert_eq!(go_mod.module.as_deref(), Some("example.com/app"));
    let requires: Vec<String> = go_mod.requires.iter().map(Target::to_string).collect();
    assert_eq!(
        requires,
        [
            "github.com/a/b@v1.0.0",
            "github.com/c/d@v1.2.3",
            "github.com/e/f@v0.1.0",
            "github.com/g/h@v2.0.0+incompatible"
        ]
    );
    assert_eq!(
        go_mod.excludes,
        [
            target("github.com/c/d@v1.2.2"),
            target("github.com/c/d@v1.2.1")
        ]
    );
    assert_eq!(
        go_mod.replaces[0],
        Replace {
            module: "github.com/a/b".into(),
            version: None,
            with: Replacement::Module(target("github.com/fork/b@v1.0.1")),
        }
    );
    assert_eq!(go_mod.replaces[1].version.as_deref(), Some("v1.2.3"));
    assert_eq!(go_mod.replaces[1].with, Replacement::Dir("../d".into()));
    assert_eq!(go_mod.replaces[2].with, Replacement::Dir("/abs/f".into()));
    assert_eq!(go_mod.replaces[3].module, "github.com/i/j");
    assert_eq!(go_mod.replaces[3].with, Replacement::Dir("./j".into()));
}

#[test]
fn go_mod_crlf_and_no_module_directive() {
    let go_mod = parse_go_mod("require (\r\n\tgithub.com/a/b v1.0.0\r\n)\r\n").unwrap();
    assert_eq!(go_mod.module, None);
    assert_eq!(go_mod.requires, [target("github.com/a/b@v1.0.0")]);
    assert_eq!(parse_go_mod("").unwrap(), GoMod::default());
}

#[test]
fn go_mod_errors_name_the_line() {
    let cases = [
        (
            "module a\nrequire github.com/a/b latest\n",
            2,
            "not a version",
        ),
        (
            "module a\n\nrequire (\n github.com/a/b v1\n)\n",
            4,
            "did you mean v1.0.0",
        ),
        ("require ../x v1.0.0\n", 1, "malformed module path"),
        ("require github.com/a/b\n", 1, "malformed `require`"),
        (
            "require github.com/a/b v1.0.0 extra\n",
            1,
            "malformed `require`",
        ),
        (
            "module a\nrequire (\n github.com/a/b v1.0.0\n",
            2,
            "never closed",
        ),
        ("module a\n)\n", 2, "expected a directive"),
        (
            "require \"github.com/a/b v1.0.0\n",
            1,
            "unterminated quoted string",
        ),
        (
            "require \"github.com/a\\qb\" v1.0.0\n",
            1,
            "unsupported escape",
        ),
        (
            "require `github.com/a/b v1.0.0\n",
            1,
            "unterminated raw string",
        ),
        (
            "\n\nreplace github.com/a/b v1.0.0\n",
            3,
            "malformed `replace`",
        ),
        (
            "replace github.com/a/b => github.com/c/d\n",
            1,
            "needs a version",
        ),
        (
            "replace github.com/a/b => ./d v1.0.0\n",
            1,
            "takes no version",
        ),
        (
            "replace github.com/a/b => github.com/c/d latest\n",
            1,
            "not a version",
        ),
        ("replace github.com/a/b v1 => ./d\n", 1, "did you mean"),
        ("replace a b c => d\n", 1, "malformed `replace`"),
        ("replace ( => x v1.0.0\n", 1, "malformed `replace`"),
        ("exclude github.com/a/b v2.0.0\n", 1, "should be v0 or v1"),
        ("module\n", 1, "malformed `module`"),
    ];
    for (text, line, why) in cases {
        let err = parse_go_mod(text).expect_err(text);
        assert_eq!(line_of(&err), line, "{text:?}: {err}");
        assert!(err.to_string().contains(why), "{text:?}: {err}");
    }
}

#[test]
fn go_mod_limits() {
    let huge = "x".repeat(MAX_INPUT_BYTES + 1);
    assert!(matches!(
        parse_go_mod(&huge),
        Err(SpecError::TooLarge { .. })
    ));
    let mut many = String::from("require (\n");
    for i in 0..=MAX_TARGETS {
        many.push_str(&format!("example.com/m{i} v1.0.0\n"));
    }
    many.push_str(")\n");
    assert!(many.len() <= MAX_INPUT_BYTES);
    let err = parse_go_mod(&many).unwrap_err();
    assert_eq!(
        err,
        SpecError::TooManyTargets {
            line: MAX_TARGETS + 2,
            max: MAX_TARGETS
        }
    );
}

#[test]
fn hostile_bytes_never_panic() {
    let inputs = [
        "(\n)\n(",
        "require (\n(\n)\n",
        "\"",
        "`",
        "=> => =>",
        "require ) (",
        "replace =>",
        "module \u{feff}é/\u{0}",
        "require é.com/x v1.0.0",
        "\\\\\\\"//",
    ];
    for text in inputs {
        let _ = parse_go_mod(text);
        let _ = parse_go_sum(text);
        let _ = parse_list(text);
    }
}

#[test]
fn go_sum_lines() {
    let text = "\
github.com/a/b v1.0.0 h1:abc=
github.com/a/b v1.0.0/go.mod h1:def=

gopkg.in/check.v1 v1.0.0-20201130134442-10cb98267c6c/go.mod h1:Co6ibVJAznAaIkqp8huTwlJQCZ016jof/cbN4VW5Yz0=
";
    let lines = parse_go_sum(text).unwrap();
    assert_eq!(lines.len(), 3);
    assert!(!lines[0].go_mod_only && lines[0].artifacts() == Artifacts::ALL);
    assert!(lines[1].go_mod_only && lines[1].artifacts() == Artifacts::MOD);
    assert_eq!(lines[2].target.module, "gopkg.in/check.v1");
    assert_eq!(lines[0].hash, "h1:abc=");
    let cases = [
        ("github.com/a/b v1.0.0\n", 1, "expected `module"),
        (
            "\ngithub.com/a/b v1.0.0 h1:x= extra\n",
            2,
            "expected `module",
        ),
        ("github.com/a/b latest h1:x=\n", 1, "not a version"),
        ("github.com/a/b v1.0.0/go.sum h1:x=\n", 1, "not a version"),
        ("github.com/a/b v1.0.0 nohash\n", 1, "not a hash"),
        ("github.com/a/b v1.0.0 :x\n", 1, "not a hash"),
    ];
    for (text, line, why) in cases {
        let err = parse_go_sum(text).expect_err(text);
        assert_eq!(line_of(&err), line, "{text:?}: {err}");
        assert!(err.to_string().contains(why), "{text:?}: {err}");
    }
}

#[test]
fn lists_skip_comments_and_blank_lines() {
    let text = "# warm these\n\n  golang.org/x/text@v0.7.0  # text\ngopkg.in/yaml.v3@v3.0.1\n";
    let targets = parse_list(text).unwrap();
    assert_eq!(
        targets,
        [
            target("golang.org/x/text@v0.7.0"),
            target("gopkg.in/yaml.v3@v3.0.1")
        ]
    );
    let err = parse_list("golang.org/x/text@v0.7.0\n\nexample.com/x@latest\n").unwrap_err();
    assert_eq!(line_of(&err), 3);
    assert!(err.to_string().contains("line 3"), "{err}");
    let err = parse_list("a.com/x@v1.0.0 b.com/y@v1.0.0\n").unwrap_err();
    assert!(err.to_string().contains("one MODULE@VERSION"), "{err}");
    let many: String = (0..=MAX_TARGETS)
        .map(|i| format!("example.com/m{i}@v1.0.0\n"))
        .collect();
    assert!(matches!(
        parse_list(&many),
        Err(SpecError::TooManyTargets { .. })
    ));
}

#[test]
fn an_overlong_version_is_refused() {
    let long = format!("example.com/hello@v1.0.0-{}", "a".repeat(7000));
    let error = Target::parse(&long).unwrap_err().to_string();
    assert!(error.contains("at most 128"), "{error}");
    assert!(Target::parse("example.com/hello@v0.0.0-20201130134442-10cb98267c6c").is_ok());
}
