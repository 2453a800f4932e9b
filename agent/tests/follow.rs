//! The log follower: a file followed like `tail -F`, and a command's output.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::{eventually, TempDir};
use heimdall_agent::{FileFollower, Follower, LogSource};

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    file.write_all(text.as_bytes()).expect("append");
}

fn poll(follower: &mut FileFollower) -> Vec<String> {
    let mut lines = Vec::new();
    follower.poll(&mut |line| lines.push(line.to_owned()));
    lines
}

#[test]
fn starts_at_the_end_and_reads_appended_lines() {
    let dir = TempDir::new("end");
    let log = dir.path().join("valheim.log");
    append(&log, "old line\n");
    let mut follower = FileFollower::open(&log, false);
    assert!(poll(&mut follower).is_empty());
    append(&log, "one\ntwo\npart");
    assert_eq!(poll(&mut follower), vec!["one", "two"]);
    append(&log, "ial\n");
    assert_eq!(poll(&mut follower), vec!["partial"]);
    assert!(poll(&mut follower).is_empty());
}

#[test]
fn starts_at_the_beginning_when_asked() {
    let dir = TempDir::new("start");
    let log = dir.path().join("valheim.log");
    append(&log, "first\nsecond\n");
    let mut follower = FileFollower::open(&log, true);
    assert_eq!(poll(&mut follower), vec!["first", "second"]);
}

#[test]
fn rereads_a_truncated_file_from_the_start() {
    let dir = TempDir::new("truncate");
    let log = dir.path().join("valheim.log");
    append(&log, "a long first line before truncation\n");
    let mut follower = FileFollower::open(&log, true);
    assert_eq!(poll(&mut follower).len(), 1);
    fs::write(&log, "").expect("truncate");
    assert!(poll(&mut follower).is_empty());
    append(&log, "after\n");
    assert_eq!(poll(&mut follower), vec!["after"]);
}

#[test]
fn follows_the_name_across_rotation() {
    let dir = TempDir::new("rotate");
    let log = dir.path().join("valheim.log");
    append(&log, "before\n");
    let mut follower = FileFollower::open(&log, false);
    append(&log, "last of old\nunterminated");
    fs::rename(&log, dir.path().join("valheim.log.1")).expect("rotate");
    assert_eq!(poll(&mut follower), vec!["last of old"]);
    append(&log, "first of new\n");
    assert_eq!(poll(&mut follower), vec!["unterminated", "first of new"]);
    append(&log, "more\n");
    assert_eq!(poll(&mut follower), vec!["more"]);
}

#[test]
fn waits_for_a_file_that_does_not_exist_yet() {
    let dir = TempDir::new("missing");
    let log = dir.path().join("later.log");
    let mut follower = FileFollower::open(&log, false);
    assert!(poll(&mut follower).is_empty());
    append(&log, "hello\n");
    assert_eq!(poll(&mut follower), vec!["hello"]);
}

#[test]
fn follows_a_command_and_restarts_it_when_it_ends() {
    // The last line has no newline: it still counts once the output closes.
    let mut follower = Follower::open(&LogSource::Command("printf 'a\\nb'".into()));
    let stop = AtomicBool::new(false);
    let mut lines = Vec::new();
    assert!(eventually(Duration::from_secs(10), || {
        follower.poll(&mut |line| lines.push(line.to_owned()));
        follower.wait(&stop, Duration::from_millis(50));
        lines.len() >= 4
    }));
    assert_eq!(lines[..4], ["a", "b", "a", "b"]);
}

#[test]
fn dropping_a_command_follower_ends_the_command() {
    let dir = TempDir::new("cmd");
    let marker = dir.path().join("alive");
    let command = format!(
        "while true; do echo tick; touch {}; sleep 0.05; done",
        marker.display()
    );
    let mut follower = Follower::open(&LogSource::Command(command));
    assert!(eventually(Duration::from_secs(10), || {
        follower.poll(&mut |_| {}) > 0
    }));
    drop(follower);
    std::thread::sleep(Duration::from_millis(200));
    let _ = fs::remove_file(&marker);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists(), "the command kept running after drop");
}
