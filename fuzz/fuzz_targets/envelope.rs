//! Queue messages, taken as reactions takes them: decoded, applied to the server's state, the
//! state stored, and /status read from it.
//!
//! The input is one queue message per line, so that the fuzzer can play sequences (a start, the
//! VM coming up, players joining, an eviction) against each of a few starting states. The
//! messages' `sent_at_ms` drive the clock, within bounds, so that the timers run too.

#![no_main]

use std::sync::OnceLock;

use heimdall_discord::Reply;
use heimdall_events::{
    Command, CommandKind, Envelope, EventBody, GameEvent, InteractionReply, Player, Requester,
    ServerReady, VmUp,
};
use heimdall_server_state::status::{status_embed, Prices};
use heimdall_server_state::{stored, Input, ScaleOutcome, ServerState, Settings, Status};
use libfuzzer_sys::fuzz_target;

/// When the played messages begin (ms since the Unix epoch).
const T0_MS: u64 = 1_764_000_000_000;
/// How far one message may move the clock: forward up to 40 days (so a session can span the
/// turn of a month), back up to a minute (invocations on different hosts disagree a little).
const MAX_STEP_MS: u64 = 40 * 24 * 3_600_000;
const MAX_SKEW_MS: u64 = 60_000;
/// With prices, /status shows the month's cost estimate too.
const PRICES: Prices = Prices {
    per_vm_hour: 0.02,
    fixed_per_month: 1.5,
};

/// What happens to the effects each message decides.
#[derive(Clone, Copy)]
enum Shell {
    /// Carried out at once, as when Discord and the scaler answer.
    Answers,
    /// Left in the outbox, as when nothing answers: it fills up and drops old messages.
    Unreachable,
}

fuzz_target!(|data: &[u8]| {
    let envelopes: Vec<Envelope> = data
        .split(|&b| b == b'\n')
        .filter_map(|line| Envelope::from_json(line).ok())
        .collect();
    for envelope in &envelopes {
        wire_form_round_trips(envelope);
    }
    for state in starting_states() {
        for shell in [Shell::Answers, Shell::Unreachable] {
            play(state.clone(), &envelopes, shell);
        }
    }
});

fn wire_form_round_trips(envelope: &Envelope) {
    let decoded = Envelope::from_json(envelope.to_json().as_bytes())
        .expect("what was decoded once decodes again");
    assert_eq!(&decoded, envelope, "the wire form lost something");
}

fn play(mut state: ServerState, envelopes: &[Envelope], shell: Shell) {
    let mut now_ms = T0_MS;
    for envelope in envelopes {
        now_ms = envelope.sent_at_ms.clamp(
            now_ms.saturating_sub(MAX_SKEW_MS),
            now_ms.saturating_add(MAX_STEP_MS),
        );
        apply(&mut state, envelope, now_ms, shell);
    }
}

/// One message, then what reactions stores and what /status shows of the result.
fn apply(state: &mut ServerState, envelope: &Envelope, now_ms: u64, shell: Shell) {
    let applied = state.apply(Input::Event(Box::new(envelope.clone())), now_ms);
    if let Shell::Answers = shell {
        let ids: Vec<String> = applied.effects.into_iter().map(|e| e.id).collect();
        state.done(&ids);
    }
    redelivery_changes_nothing(state, envelope, now_ms);
    stored_form_round_trips(state);
    Reply::Embed(status_embed(state, now_ms, PRICES)).to_json();
}

/// A message delivered again (same id) decides nothing and changes nothing. Ticks and
/// heartbeats are not remembered: repeating them is their point.
fn redelivery_changes_nothing(state: &ServerState, envelope: &Envelope, now_ms: u64) {
    let repeatable = matches!(
        envelope.body,
        EventBody::Tick | EventBody::Game(GameEvent::Heartbeat(_))
    );
    if repeatable {
        return;
    }
    let mut again = state.clone();
    let applied = again.apply(Input::Event(Box::new(envelope.clone())), now_ms);
    assert!(
        applied.effects.is_empty() && applied.dropped.is_empty(),
        "a redelivered message decided something"
    );
    assert_eq!(&again, state, "a redelivered message changed the state");
}

/// What reactions writes to the table is what it (and /status) reads back.
fn stored_form_round_trips(state: &ServerState) {
    let properties = stored::encode(state).expect("a state always encodes");
    let decoded =
        stored::decode(&properties, state.settings.clone()).expect("a stored state decodes");
    assert_eq!(&decoded, state, "the stored form lost something");
}

/// Stopped, starting (a scale operation in flight), running with two players online, and
/// saving before a stop. Built once, through the same inputs as in production.
fn starting_states() -> &'static [ServerState] {
    static STATES: OnceLock<Vec<ServerState>> = OnceLock::new();
    STATES.get_or_init(|| {
        let stopped = ServerState::new(settings());
        let starting = after(
            &stopped,
            [
                command("cmd-1", CommandKind::Start),
                Input::Scaled {
                    capacity: 1,
                    outcome: ScaleOutcome::InProgress {
                        poll_url: "https://management.azure.com/operations/1".into(),
                        retry_after_ms: 10_000,
                    },
                },
            ],
        );
        let running = after(
            &starting,
            [
                Input::Scaled {
                    capacity: 1,
                    outcome: ScaleOutcome::Succeeded,
                },
                game("evt-1", GameEvent::VmUp(vm_up())),
                game("evt-2", GameEvent::ServerReady(ready())),
                game("evt-3", GameEvent::PlayerJoined(player("Freya"))),
                game("evt-4", GameEvent::PlayerJoined(player("Odin"))),
            ],
        );
        let saving = after(&running, [command("cmd-2", CommandKind::Stop)]);
        assert_eq!(running.status, Status::Running, "the setup did not start");
        assert_eq!(saving.status, Status::Stopping, "the setup did not stop");
        vec![stopped, starting, running, saving]
    })
}

/// Owner settings with two VM sizes, so that a start can fall back to the second.
fn settings() -> Settings {
    Settings {
        vm_sizes: vec!["Standard_D2as_v5".into(), "Standard_D4as_v5".into()],
        ..Settings::default()
    }
}

/// `state` after `inputs`, applied ten minutes before the fuzzed messages, effects done.
fn after(state: &ServerState, inputs: impl IntoIterator<Item = Input>) -> ServerState {
    let mut state = state.clone();
    for input in inputs {
        let applied = state.apply(input, T0_MS - 600_000);
        let ids: Vec<String> = applied.effects.into_iter().map(|e| e.id).collect();
        state.done(&ids);
    }
    state
}

fn envelope(id: &str, body: EventBody) -> Input {
    let envelope = Envelope::new(id.into(), "valheim".into(), T0_MS - 600_000, body);
    Input::Event(Box::new(envelope))
}

fn command(id: &str, kind: CommandKind) -> Input {
    envelope(
        id,
        EventBody::Command(Command {
            kind,
            requester: Requester {
                user_id: "53908232506183680".into(),
                name: "Ada".into(),
                roles: vec!["539082325061836999".into()],
            },
            guild_id: Some("290926798626357999".into()),
            channel_id: "645027906669510667".into(),
            reply: InteractionReply {
                application_id: "1100000000000000000".into(),
                interaction_id: id.trim_start_matches("cmd-").into(),
                token: format!("token-{id}"),
            },
        }),
    )
}

fn game(id: &str, event: GameEvent) -> Input {
    envelope(id, EventBody::Game(event))
}

fn vm_up() -> VmUp {
    VmUp {
        vm_name: "valheim_0".into(),
        public_ip: Some("20.1.2.3".into()),
    }
}

fn ready() -> ServerReady {
    ServerReady {
        world_name: Some("Vanaheim".into()),
        join_code: None,
    }
}

fn player(character: &str) -> Player {
    Player {
        character: character.into(),
    }
}
