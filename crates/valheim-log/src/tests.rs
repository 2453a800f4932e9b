use super::*;

const SESSION: &str = include_str!("../fixtures/valheim-session.log");
const CROSSPLAY: &str = include_str!("../fixtures/valheim-crossplay.log");

fn parse_all(log: &str) -> Vec<GameEvent> {
    let mut parser = LogParser::new();
    log.lines().flat_map(|line| parser.line(line)).collect()
}

fn ready(world: Option<&str>, code: Option<&str>) -> GameEvent {
    GameEvent::ServerReady(ServerReady {
        world_name: world.map(str::to_owned),
        join_code: code.map(str::to_owned),
    })
}

fn joined(name: &str) -> GameEvent {
    GameEvent::PlayerJoined(Player {
        character: name.to_owned(),
    })
}

fn left(name: &str) -> GameEvent {
    GameEvent::PlayerLeft(Player {
        character: name.to_owned(),
    })
}

fn saved(ms: u32) -> GameEvent {
    GameEvent::WorldSaved(WorldSaved {
        duration_ms: Some(ms),
    })
}

#[test]
fn steam_session_fixture() {
    assert_eq!(
        parse_all(SESSION),
        vec![
            ready(Some("Vanaheim"), None),
            joined("Freya Stormborn"),
            joined("Thorvald"),
            saved(388),
            saved(401),
            left("Freya Stormborn"),
            left("Thorvald"),
            saved(14),
        ]
    );
}

#[test]
fn crossplay_fixture() {
    assert_eq!(
        parse_all(CROSSPLAY),
        vec![
            ready(None, None),
            ready(Some("Vanaheim"), Some("371904")),
            joined("Ingrid"),
            left("Ingrid"),
            GameEvent::JoinCodeChanged(JoinCodeChanged {
                join_code: "552018".into()
            }),
        ]
    );
}

/// Re-prefixes every game line of the Steam fixture and expects the same events.
fn same_events_with_prefix(prefix: &str) {
    let expected = parse_all(SESSION);
    let rewritten: String = SESSION
        .lines()
        .filter_map(|line| line.split_once("valheim-server ").map(|(_, rest)| rest))
        .map(|rest| format!("{prefix}{rest}\n"))
        .collect();
    assert_eq!(parse_all(&rewritten), expected, "prefix {prefix:?}");
}

#[test]
fn prefix_variants() {
    same_events_with_prefix("");
    same_events_with_prefix("[Info   : Unity Log] ");
    same_events_with_prefix("2026-11-20T19:59:46.123Z valheim | ");
    same_events_with_prefix("   ");
}

#[test]
fn windows_line_endings() {
    let crlf = SESSION.replace('\n', "\r\n");
    let mut parser = LogParser::new();
    let events: Vec<_> = crlf
        .split_inclusive('\n')
        .flat_map(|line| parser.line(line))
        .collect();
    assert_eq!(events, parse_all(SESSION));
}

#[test]
fn lines_without_stamp() {
    let mut parser = LogParser::new();
    assert_eq!(parser.line("Loading world: Midgard"), vec![]);
    assert_eq!(
        parser.line("[Info   : Unity Log] Game server connected"),
        vec![ready(Some("Midgard"), None)]
    );
    assert_eq!(
        parser.line("Got character ZDOID from Ada : 5:1"),
        vec![joined("Ada")]
    );
}

#[test]
fn garbage_gives_nothing() {
    let mut parser = LogParser::new();
    for line in [
        "",
        "\n",
        "/",
        "//",
        "1/",
        "00/00/0000 00:00:00:",
        "11/20/2026 19:59:46: ",
        "11/20/2026 19:59:46: Got character ZDOID from",
        "11/20/2026 19:59:46: Got character ZDOID from X : notanumber",
        "11/20/2026 19:59:46: Got character ZDOID from  : 1:1",
        "11/20/2026 19:59:46: World saved",
        "11/20/2026 19:59:46: World save (1/5) writing",
        "11/20/2026 19:59:46: Game server connected failed",
        "11/20/2026 19:59:46: Session \"X\" with join code 1 and IP 1.2.3.4:2456 is active",
        "11/20/2026 19:59:46: Destroying abandoned non persistent zdo 1:1 owner x",
        "11/20/2026 19:59:46: Closing socket",
        "ab/cd/efgh ij:kl:mn: Game server connected failed",
        "ÿÿÿ/ÿÿ/ÿÿÿ 💥 Got character",
        "\u{0}\u{1}\u{2}",
    ] {
        assert_eq!(parser.line(line), vec![], "{line:?}");
    }
    assert_eq!(parser.online().count(), 0);
}

#[test]
fn very_long_line() {
    let mut parser = LogParser::new();
    let noise = "a/b ".repeat(250_000);
    assert_eq!(parser.line(&noise), vec![]);
    let long_name = "N".repeat(100_000);
    let line = format!("{noise}11/20/2026 20:03:21: Got character ZDOID from {long_name} : 7:1");
    assert_eq!(parser.line(&line), vec![joined(&long_name)]);
}

#[test]
fn unparsable_save_duration_still_reports_the_save() {
    let mut parser = LogParser::new();
    assert_eq!(
        parser.line("11/20/2026 20:20:00: World saved ( fast )"),
        vec![GameEvent::WorldSaved(WorldSaved { duration_ms: None })]
    );
}

#[test]
fn wrong_password_peer_does_not_take_the_next_character() {
    let mut parser = LogParser::new();
    let events: Vec<_> = [
        "01/01/2026 10:00:00: Got handshake from client 111",
        "01/01/2026 10:00:00: Peer 111 has wrong password",
        "01/01/2026 10:00:01: Got handshake from client 222",
        "01/01/2026 10:00:01: Got connection SteamID 222",
        "01/01/2026 10:00:02: Got character ZDOID from Bo : 9:1",
        // 111 closes its socket after the refusal: Bo is still on.
        "01/01/2026 10:00:03: Closing socket 111",
        "01/01/2026 10:00:04: Closing socket 222",
    ]
    .iter()
    .flat_map(|line| parser.line(line))
    .collect();
    assert_eq!(events, vec![joined("Bo"), left("Bo")]);
}

#[test]
fn crossplay_leave_with_players_still_on_waits_for_the_zdo() {
    let mut parser = LogParser::new();
    let mut events = Vec::new();
    for line in [
        "01/01/2026 10:00:00: Got character ZDOID from Ada : 1:1",
        "01/01/2026 10:00:00: Got character ZDOID from Bo : 2:1",
        "01/01/2026 10:00:05: Player connection lost server \"V\" that has join code 1, now 1 player(s)",
        "01/01/2026 10:00:06: Destroying abandoned non persistent zdo 2:1 owner 2",
        "01/01/2026 10:00:07: Player connection lost server \"V\" that has join code 1, now 0 player(s)",
    ] {
        events.extend(parser.line(line));
    }
    assert_eq!(
        events,
        vec![joined("Ada"), joined("Bo"), left("Bo"), left("Ada")]
    );
}

#[test]
fn rejoin_after_leave_is_a_new_join() {
    let mut parser = LogParser::new();
    let mut events = Vec::new();
    for line in [
        "01/01/2026 10:00:00: Got character ZDOID from Ada : 1:1",
        "01/01/2026 10:00:01: Destroying abandoned non persistent zdo 1:1 owner 1",
        "01/01/2026 10:00:02: Got character ZDOID from Ada : 3:1",
    ] {
        events.extend(parser.line(line));
    }
    assert_eq!(events, vec![joined("Ada"), left("Ada"), joined("Ada")]);
}

#[test]
fn a_new_game_run_ends_the_old_sessions() {
    let mut parser = LogParser::new();
    let mut events = Vec::new();
    for line in [
        "01/01/2026 10:00:00: Loading world: Old",
        "01/01/2026 10:00:00: Got character ZDOID from Ada : 1:1",
        "01/01/2026 11:00:00: Valheim version: l-0.221.4 (network version 36)",
        "01/01/2026 11:00:09: Game server connected",
    ] {
        events.extend(parser.line(line));
    }
    assert_eq!(events, vec![joined("Ada"), left("Ada"), ready(None, None)]);
}

#[test]
fn a_new_join_code_is_a_change_not_a_new_ready() {
    let mut parser = LogParser::new();
    let events: Vec<_> = [
        "01/01/2026 10:00:00: Game server connected",
        "01/01/2026 10:00:01: Session \"V\" registered with join code 1",
        "01/01/2026 10:00:02: Session \"V\" registered with join code 2",
        "01/01/2026 10:00:03: Created new join code 3 for session \"V\"",
    ]
    .iter()
    .flat_map(|line| parser.line(line))
    .collect();
    assert_eq!(
        events,
        vec![
            ready(None, None),
            ready(Some("V"), Some("1")),
            GameEvent::JoinCodeChanged(JoinCodeChanged {
                join_code: "3".into()
            })
        ]
    );
}
