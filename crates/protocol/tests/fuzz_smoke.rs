//! Runs the fuzz target's invariants over many deterministic inputs on stable Rust:
//! strings built from protocol-flavoured tokens (including non-ASCII and case-folding
//! characters) and token mutations of real request paths. Set `FUZZ_SEED` to reproduce.

use goproxy_protocol::fuzzing::path_codec;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEEDS: &[&str] = &[
    "github.com/!burnt!sushi/toml/@v/v1.2.0.zip",
    "/github.com/%21burnt%21sushi/toml/@v/list",
    "example.com/hello/v2/@v/v2.0.0.info",
    "example.com/hello/@latest",
    "gopkg.in/yaml.v3/@v/v3.0.1.mod",
    "gopkg.in/check.v1/@v/v0.0.0-20161208181325-20d25e280405.info",
    "example.com/x/@v/v1.0.0-!r!c1.mod",
    "example.com/x/@v/v2.0.0+incompatible.zip",
    "example.com/x/@v/v1.2.4-0.20191109021931-daa7c04131f5.info",
    "sumdb/sum.golang.org/tile/8/0/x001/234.p/5",
    "sumdb/sum.golang.org/lookup/golang.org/x/text@v0.7.0",
    "sumdb/sum.golang.org/supported",
    "{\"Version\":\"v1.0.0\",\"Time\":\"2022-06-01T10:00:00Z\"}",
    "module example.com/x // c\ngo 1.19\n",
];
const TOKENS: &[&str] = &[
    "a",
    "z",
    "0",
    "9",
    "A",
    "Z",
    ".",
    "/",
    "-",
    "_",
    "~",
    "!",
    "@",
    "+",
    "%",
    "%21",
    "%2e",
    "%2F",
    "%00",
    "%ff",
    "..",
    "//",
    "\\",
    "\0",
    "\n",
    " ",
    "?",
    "#",
    "é",
    "İ",
    "\u{212a}",
    "\u{17f}",
    "\u{df}",
    "\u{fffd}",
    "v",
    "v0",
    "v1",
    "v2",
    ".0",
    "-0.",
    "-pre",
    ".v1",
    "20191109021931",
    "-daa7c04131f5",
    "+incompatible",
    "@v/",
    "/@v/",
    "list",
    "@latest",
    ".info",
    ".mod",
    ".zip",
    "example.com",
    "gopkg.in/",
    "sumdb/",
    "tile/8/",
    "data/",
    "x001/",
    ".p/",
    "lookup/",
    "latest",
    "module ",
    "\"",
    "`",
    "(",
    ")",
];
const ITERATIONS: usize = 50_000;
const MAX_TOKENS: usize = 24;
const MAX_MUTATIONS: usize = 4;
const DEFAULT_SEED: u64 = 0x0060_9e0c;

fn token(rng: &mut StdRng) -> &'static str {
    TOKENS[rng.random_range(0..TOKENS.len())]
}

/// A random string of tokens.
fn generated(rng: &mut StdRng) -> String {
    (0..rng.random_range(0..MAX_TOKENS))
        .map(|_| token(rng))
        .collect()
}

/// A seed with a few tokens inserted, replaced or removed at character boundaries.
fn mutated(rng: &mut StdRng) -> String {
    let mut text = SEEDS[rng.random_range(0..SEEDS.len())].to_string();
    for _ in 0..rng.random_range(1..=MAX_MUTATIONS) {
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let at = boundaries[rng.random_range(0..boundaries.len())];
        let end = boundaries
            .iter()
            .copied()
            .find(|&b| b > at)
            .unwrap_or(text.len());
        match rng.random_range(0..3) {
            0 => text.insert_str(at, token(rng)),
            1 => text.replace_range(at..end, token(rng)),
            _ => text.replace_range(at..end, ""),
        }
    }
    text
}

#[test]
fn path_codec_invariants_hold_on_random_inputs() {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    println!("fuzz smoke seed: {seed} (set FUZZ_SEED to reproduce)");
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..ITERATIONS {
        let input = if rng.random_bool(0.5) {
            generated(&mut rng)
        } else {
            mutated(&mut rng)
        };
        let result = std::panic::catch_unwind(|| path_codec(input.as_bytes()));
        assert!(result.is_ok(), "invariant broken for input {input:?}");
    }
    // Raw bytes too: invalid UTF-8 and truncated multi-byte characters.
    for _ in 0..ITERATIONS / 10 {
        let bytes: Vec<u8> = (0..rng.random_range(0..MAX_TOKENS))
            .map(|_| rng.random())
            .collect();
        path_codec(&bytes);
    }
}

#[test]
fn known_regressions_hold() {
    // `unescape_version` once accepted non-ASCII that `escape_version` refuses.
    for input in [
        "vé",
        "v\u{212a}",
        "backup~1",
        "example.com/x/@v/vé.info",
        "",
    ] {
        path_codec(input.as_bytes());
    }
}
