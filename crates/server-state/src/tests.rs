use heimdall_events::{
    Command, CommandKind, Envelope, EventBody, GameEvent, InteractionReply, Player, Requester,
    ServerReady, VmUp,
};

use crate::{Effect, EffectKind, Input, ScaleOutcome, ServerState, Status};

fn envelope(id: &str, body: EventBody) -> Input {
    Input::Event(Box::new(Envelope::new(
        id.into(),
        "valheim".into(),
        0,
        body,
    )))
}

fn command(id: &str, kind: CommandKind) -> Input {
    envelope(
        id,
        EventBody::Command(Command {
            kind,
            requester: Requester {
                user_id: "u1".into(),
                name: "Ada".into(),
                roles: vec![],
            },
            guild_id: Some("g".into()),
            channel_id: "chan".into(),
            reply: InteractionReply {
                application_id: "app".into(),
                interaction_id: format!("i-{id}"),
                token: format!("tok-{id}"),
            },
        }),
    )
}

fn game(id: &str, event: GameEvent) -> Input {
    envelope(id, EventBody::Game(event))
}

fn kinds(effects: &[Effect]) -> Vec<&EffectKind> {
    effects.iter().map(|e| &e.kind).collect()
}

fn texts(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match &e.kind {
            EffectKind::EditReply { content, .. } | EffectKind::PostMessage { content, .. } => {
                Some(content.clone())
            }
            _ => None,
        })
        .collect()
}

/// Applies and immediately reports the effects done, as the shell does.
fn step(state: &mut ServerState, input: Input) -> Vec<Effect> {
    let effects = state.apply(input, 1_000);
    let ids: Vec<String> = effects.iter().map(|e| e.id.clone()).collect();
    state.done(&ids);
    effects
}

#[test]
fn a_whole_evening() {
    let mut s = ServerState::new(2456);
    let e = step(&mut s, command("c1", CommandKind::Start));
    assert_eq!(s.status, Status::Starting);
    assert!(matches!(
        kinds(&e)[..],
        [
            EffectKind::Scale { capacity: 1 },
            EffectKind::EditReply { .. }
        ]
    ));
    assert!(texts(&e)[0].contains("Starting"));

    let e = step(
        &mut s,
        Input::Scaled(ScaleOutcome::InProgress {
            poll_url: "https://arm/op".into(),
        }),
    );
    assert!(e.is_empty());
    let e = step(&mut s, envelope("t1", EventBody::Tick));
    assert_eq!(
        kinds(&e),
        vec![&EffectKind::PollOperation {
            poll_url: "https://arm/op".into()
        }]
    );
    let e = step(&mut s, Input::Scaled(ScaleOutcome::Succeeded));
    assert_eq!(kinds(&e), vec![&EffectKind::LookupInstance]);
    let e = step(
        &mut s,
        Input::Instance {
            public_ip: Some("20.1.2.3".into()),
        },
    );
    assert_eq!(s.status, Status::Booting);
    assert_eq!(texts(&e), vec!["🖥️ VM up at 20.1.2.3, loading world…"]);

    // The agent reports the same address: said once only.
    let e = step(
        &mut s,
        game(
            "g1",
            GameEvent::VmUp(VmUp {
                vm_name: "vm_0".into(),
                public_ip: "20.1.2.3".into(),
            }),
        ),
    );
    assert!(e.is_empty());

    let ready = ServerReady {
        world_name: Some("Vanaheim".into()),
        join_code: None,
    };
    let e = step(&mut s, game("g2", GameEvent::ServerReady(ready)));
    assert_eq!(s.status, Status::Running);
    assert_eq!(texts(&e).len(), 2, "reply edited and channel told");
    assert!(texts(&e)[0].contains("20.1.2.3:2456"));

    let e = step(
        &mut s,
        game(
            "g3",
            GameEvent::PlayerJoined(Player {
                character: "Freya".into(),
            }),
        ),
    );
    assert_eq!(texts(&e), vec!["⚔️ Freya joined (1 online)"]);
    let e = step(&mut s, command("c2", CommandKind::Status));
    assert!(texts(&e)[0].contains("1 online: Freya"));
    let e = step(
        &mut s,
        game(
            "g4",
            GameEvent::PlayerLeft(Player {
                character: "Freya".into(),
            }),
        ),
    );
    assert_eq!(texts(&e), vec!["👋 Freya left (0 online)"]);

    let e = step(&mut s, command("c3", CommandKind::Stop));
    assert_eq!(s.status, Status::Stopping);
    assert!(matches!(kinds(&e)[0], EffectKind::Scale { capacity: 0 }));
    let e = step(&mut s, Input::Scaled(ScaleOutcome::Succeeded));
    assert_eq!(s.status, Status::Stopped);
    assert!(texts(&e)[0].contains("stopped"));
    assert_eq!(s.public_ip, None);
    assert!(s.outbox.is_empty());
}

#[test]
fn a_redelivered_event_changes_nothing() {
    let mut s = ServerState::new(2456);
    step(&mut s, command("c1", CommandKind::Start));
    let before = s.clone();
    assert!(step(&mut s, command("c1", CommandKind::Start)).is_empty());
    assert_eq!(s, before);
}

#[test]
fn start_while_running_only_answers() {
    let mut s = ServerState::new(2456);
    step(&mut s, command("c1", CommandKind::Start));
    let e = step(&mut s, command("c2", CommandKind::Start));
    assert_eq!(e.len(), 1);
    assert!(texts(&e)[0].starts_with("ℹ️ Nothing to do"));
    let stop_when_stopped = step(&mut ServerState::new(1), command("c3", CommandKind::Stop));
    assert!(texts(&stop_when_stopped)[0].contains("stopped"));
}

#[test]
fn effects_stay_in_the_outbox_until_done() {
    let mut s = ServerState::new(2456);
    let e = s.apply(command("c1", CommandKind::Start), 1_000);
    assert_eq!(s.outbox, e);
    // A tick while the scale request is still queued adds no second one.
    assert!(s.apply(envelope("t1", EventBody::Tick), 2_000).is_empty());
    s.done(&[e[0].id.clone()]);
    assert_eq!(s.outbox.len(), 1);
    // The scale request was carried out but its answer lost: the tick asks again.
    let again = s.apply(envelope("t2", EventBody::Tick), 3_000);
    assert_eq!(kinds(&again), vec![&EffectKind::Scale { capacity: 1 }]);
    // Only effects old enough are handed out for retry.
    assert_eq!(
        s.stale_effects(3_500, 1_000).len(),
        1,
        "the reply edit from t=1000"
    );
    assert_eq!(s.stale_effects(3_500, 10_000).len(), 0);
}

#[test]
fn a_failed_start_is_reported_and_settles() {
    let mut s = ServerState::new(2456);
    step(&mut s, command("c1", CommandKind::Start));
    let e = step(
        &mut s,
        Input::Scaled(ScaleOutcome::Failed {
            message: "SkuNotAvailable".into(),
        }),
    );
    assert_eq!(s.status, Status::Stopped);
    assert!(texts(&e)[0].contains("Could not start the server: SkuNotAvailable"));
    assert_eq!(s.operation, None);
}

#[test]
fn state_round_trips_through_json() {
    let mut s = ServerState::new(2456);
    s.apply(command("c1", CommandKind::Start), 5);
    let json = serde_json::to_string(&s).unwrap();
    let back: ServerState = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    assert_eq!(back.outbox, s.outbox);
}

#[test]
fn a_second_ready_only_updates_the_join_code() {
    let mut s = ServerState::new(2456);
    step(&mut s, command("c1", CommandKind::Start));
    step(&mut s, Input::Scaled(ScaleOutcome::Succeeded));
    step(
        &mut s,
        Input::Instance {
            public_ip: Some("20.1.2.3".into()),
        },
    );
    let first = ServerReady {
        world_name: Some("Vanaheim".into()),
        join_code: None,
    };
    step(&mut s, game("g1", GameEvent::ServerReady(first.clone())));
    assert!(step(&mut s, game("g2", GameEvent::ServerReady(first))).is_empty());
    let coded = ServerReady {
        world_name: Some("Vanaheim".into()),
        join_code: Some("371904".into()),
    };
    let e = step(&mut s, game("g3", GameEvent::ServerReady(coded)));
    assert_eq!(kinds(&e).len(), 1);
    assert!(texts(&e)[0].contains("crossplay join code 371904"));
    assert_eq!(s.status, Status::Running);
}

#[test]
fn one_drainer_at_a_time_until_the_lease_runs_out() {
    let mut s = ServerState::new(2456);
    assert!(s.acquire_lease("a", 1_000, 500));
    assert!(!s.acquire_lease("b", 1_200, 500), "held by a");
    assert!(s.acquire_lease("a", 1_300, 500), "a renews");
    assert!(s.acquire_lease("b", 1_801, 500), "expired: b takes over");
    s.release_lease("a");
    assert_eq!(s.drain_lease.as_ref().map(|l| l.owner.as_str()), Some("b"));
    s.release_lease("b");
    assert_eq!(s.drain_lease, None);
}
