//! The spool on disk: order, durability across a "restart", corrupt files set aside.

mod common;

use std::fs;

use common::TempDir;
use heimdall_agent::Spool;
use heimdall_events::{Envelope, EventBody, GameEvent, WorldSaved};

fn envelope(id: &str, at: u64) -> Envelope {
    Envelope::new(
        id.into(),
        "vanaheim".into(),
        at,
        EventBody::Game(GameEvent::WorldSaved(WorldSaved {
            duration_ms: Some(1),
        })),
    )
}

#[test]
fn keeps_envelopes_in_order_across_a_restart() {
    let dir = TempDir::new("spool-order");
    let spool = Spool::open(dir.path()).expect("open");
    for (id, at) in [("b", 2000), ("c", 2000), ("a", 1000)] {
        spool.write(&envelope(id, at)).expect("write");
    }
    drop(spool);

    let spool = Spool::open(dir.path()).expect("reopen");
    let mut ids = Vec::new();
    while let Some(spooled) = spool.oldest().expect("read") {
        ids.push(spooled.envelope.id.clone());
        spool.remove(&spooled.path).expect("remove");
    }
    assert_eq!(ids, vec!["a", "b", "c"]);
    assert!(spool.pending().expect("list").is_empty());
}

#[test]
fn sets_aside_what_is_not_an_envelope_and_drops_partial_writes() {
    let dir = TempDir::new("spool-bad");
    fs::write(
        dir.path().join("00000000000000000001-0000000000-x.json"),
        "{",
    )
    .expect("write");
    fs::write(
        dir.path().join("00000000000000000002-0000000000-y.partial"),
        "{",
    )
    .expect("write");
    let spool = Spool::open(dir.path()).expect("open");
    spool.write(&envelope("good", 5)).expect("write");
    let oldest = spool.oldest().expect("read").expect("one left");
    assert_eq!(oldest.envelope.id, "good");
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2);
    assert!(names[0].ends_with("x.json.rejected"));
    assert!(names[1].ends_with("good.json"));
}
