//! Runs the fuzz target's invariants over many deterministic inputs on stable Rust:
//! random strings from a protocol-flavoured alphabet and mutations of real paths.

use goproxy_protocol::fuzzing::path_codec;
use rand::{Rng, SeedableRng};

const SEEDS: &[&str] = &[
    "github.com/!burnt!sushi/toml/@v/v1.2.0.zip",
    "example.com/hello/v2/@v/v2.0.0.info",
    "example.com/hello/@latest",
    "gopkg.in/yaml.v3/@v/list",
    "example.com/x/@v/v1.0.0-!r!c1.mod",
    "sumdb/sum.golang.org/tile/8/0/x001/234.p/5",
    "sumdb/sum.golang.org/lookup/golang.org/x/text@v0.7.0",
];
const ALPHABET: &[u8] = b"abcXYZ019./@!-_~+vV%\\\0 \n";
const ITERATIONS: usize = 50_000;

#[test]
fn path_codec_invariants_hold_on_random_inputs() {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x60_9E_0C);
    println!("fuzz smoke seed: {seed} (set FUZZ_SEED to reproduce)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..ITERATIONS {
        let input: Vec<u8> = if rng.random_bool(0.5) {
            let len = rng.random_range(0..64);
            (0..len)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
                .collect()
        } else {
            let mut bytes = SEEDS[rng.random_range(0..SEEDS.len())].as_bytes().to_vec();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..bytes.len());
                match rng.random_range(0..3) {
                    0 => bytes[at] = ALPHABET[rng.random_range(0..ALPHABET.len())],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, ALPHABET[rng.random_range(0..ALPHABET.len())]),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            bytes
        };
        path_codec(&input);
    }
}
