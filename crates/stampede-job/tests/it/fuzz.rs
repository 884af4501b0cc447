//! A bounded fuzz run of the descriptor parser on stable Rust: mutations of real
//! descriptors (byte flips, cuts, splices, repeated and swapped pieces) must give a job or
//! an error, never a panic. The seed is fixed, so a failure reproduces; `STAMPEDE_FUZZ_CASES`
//! runs more cases.

use std::path::Path;
use std::time::{Duration, Instant};

use stampede_job::Job;

use crate::registry;

/// splitmix64: deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{{ .ID }}",
    "{{ target.url }}",
    "{{ steps.a.b }}",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "\n",
    "  ",
    "\"",
    "'",
    "&a",
    "*a",
    "!!str ",
    "~",
    "-1",
    "1e999",
    "0",
    "99999999999999999999",
    "runs",
    "steps",
    "load",
    "rate",
    "vus",
    "stages",
    "TestDescriptors",
    "Parameters",
    "label",
    "\u{0}",
    "é",
    "\t",
    "#",
    "version",
    "2.0",
    "_tag",
];

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => bytes.truncate(at),
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                bytes.splice(at..at, token.iter().copied());
            }
            3 if !other.is_empty() => {
                let from = rng.below(other.len());
                let to = (from + rng.below(200)).min(other.len());
                bytes.splice(at..at, other[from..to].iter().copied());
            }
            4 => {
                let end = (at + rng.below(40)).min(bytes.len());
                bytes.drain(at..end);
            }
            _ => {
                let end = (at + rng.below(60)).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                bytes.splice(at..at, piece);
            }
        }
    }
    bytes
}

#[test]
fn the_descriptor_parser_never_panics_on_mutated_input() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds: Vec<Vec<u8>> = [
        "../../examples/smoke.yaml",
        "../../examples/mixed.yaml",
        "../../examples/contest-literal.json",
        "tests/contest/start.json",
        "tests/contest/test-retry.yaml",
    ]
    .iter()
    .map(|p| std::fs::read(root.join(p)).unwrap())
    .collect();
    let cases: usize = std::env::var("STAMPEDE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let budget = Duration::from_secs(60);
    let started = Instant::now();
    let mut rng = Rng(0x5eed);
    let (mut valid, mut invalid) = (0, 0);
    for case in 0..cases {
        if started.elapsed() > budget {
            break;
        }
        let seed = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed, other);
        let text = String::from_utf8_lossy(&input);
        let registry = registry();
        // The registry holds no state a panic could leave half-changed.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Job::parse(&text, "fuzz.yaml", &root.join("tests/contest"), &registry).map(drop)
        }));
        match parsed {
            Ok(Ok(())) => valid += 1,
            Ok(Err(_)) => invalid += 1,
            Err(_) => panic!("case {case} panicked on:\n{text}"),
        }
    }
    assert!(
        invalid > 0 && valid + invalid > 100,
        "{valid} valid, {invalid} invalid"
    );
}
