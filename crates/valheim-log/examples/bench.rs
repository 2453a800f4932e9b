//! Parser throughput: both fixtures repeated to about 2 million lines, parsed on one core.
//! `cargo run --release -p heimdall-valheim-log --example bench`

use heimdall_valheim_log::LogParser;
use std::time::Instant;

const SESSION: &str = include_str!("../fixtures/valheim-session.log");
const CROSSPLAY: &str = include_str!("../fixtures/valheim-crossplay.log");
const TARGET_LINES: usize = 2_000_000;

fn main() {
    let one_round: Vec<&str> = SESSION.lines().chain(CROSSPLAY.lines()).collect();
    let rounds = TARGET_LINES / one_round.len() + 1;
    let lines: Vec<&str> = (0..rounds)
        .flat_map(|_| one_round.iter().copied())
        .collect();

    let mut parser = LogParser::new();
    let mut events = 0usize;
    let started = Instant::now();
    for line in &lines {
        events += parser.line(line).len();
    }
    let elapsed = started.elapsed();
    let per_second = lines.len() as f64 / elapsed.as_secs_f64();
    println!(
        "{} lines, {events} events in {:.1} ms: {:.0} lines/s",
        lines.len(),
        elapsed.as_secs_f64() * 1000.0,
        per_second
    );
}
