use heimdall_events::{
    Command, CommandKind, Envelope, EventBody, EvictionComing, EvictionKind, GameEvent,
    GameStopped, Heartbeat, InteractionReply, JoinCodeChanged, Player, Requester, ServerReady,
    VmUp, WorldSaved,
};

use crate::{
    Effect, EffectKind, Input, LostReason, ScaleOutcome, ServerState, Settings, Status, StopCause,
};

const MIN: u64 = 60_000;

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

fn tick(id: &str) -> Input {
    envelope(id, EventBody::Tick)
}

fn scaled(capacity: u32, outcome: ScaleOutcome) -> Input {
    Input::Scaled { capacity, outcome }
}

fn instance(ip: Option<&str>) -> Input {
    Input::Instance {
        vm_name: ip.map(|_| "valheim_0".to_owned()),
        public_ip: ip.map(str::to_owned),
    }
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

fn has(effects: &[Effect], wanted: impl Fn(&EffectKind) -> bool) -> bool {
    effects.iter().any(|e| wanted(&e.kind))
}

/// A clock for the test: every step happens at `now`, which the test moves on.
struct Clock {
    now: u64,
}

impl Clock {
    /// Applies and immediately reports the effects done, as the shell does.
    fn step(&self, state: &mut ServerState, input: Input) -> Vec<Effect> {
        let effects = state.apply(input, self.now).effects;
        let ids: Vec<String> = effects.iter().map(|e| e.id.clone()).collect();
        state.done(&ids);
        effects
    }
}

fn step(state: &mut ServerState, input: Input) -> Vec<Effect> {
    Clock { now: 1_000 }.step(state, input)
}

fn ready() -> ServerReady {
    ServerReady {
        world_name: Some("Vanaheim".into()),
        join_code: None,
    }
}

/// A server that is running with Freya online, at t = 1 s.
fn running() -> ServerState {
    let mut s = ServerState::new(Settings::default());
    step(&mut s, command("c1", CommandKind::Start));
    step(&mut s, scaled(1, ScaleOutcome::Succeeded));
    step(
        &mut s,
        game(
            "g0",
            GameEvent::VmUp(VmUp {
                vm_name: "valheim_0".into(),
                public_ip: Some("20.1.2.3".into()),
            }),
        ),
    );
    step(&mut s, game("g1", GameEvent::ServerReady(ready())));
    step(
        &mut s,
        game(
            "g2",
            GameEvent::PlayerJoined(Player {
                character: "Freya".into(),
            }),
        ),
    );
    assert_eq!(s.status, Status::Running);
    s
}

#[test]
fn a_whole_evening() {
    let mut s = ServerState::new(Settings::default());
    let e = step(&mut s, command("c1", CommandKind::Start));
    assert_eq!(s.status, Status::Starting);
    assert!(matches!(
        kinds(&e)[..],
        [
            EffectKind::Scale { capacity: 1, .. },
            EffectKind::EditReply { .. }
        ]
    ));
    assert!(texts(&e)[0].contains("Starting"));
    // Each effect names the event it came from, for the logs.
    assert!(e.iter().all(|e| e.cause == "c1"), "{e:?}");

    let e = step(
        &mut s,
        scaled(
            1,
            ScaleOutcome::InProgress {
                poll_url: "https://arm/op".into(),
                retry_after_ms: 0,
            },
        ),
    );
    assert!(e.is_empty());
    let e = step(&mut s, tick("t1"));
    assert_eq!(
        kinds(&e),
        vec![&EffectKind::PollOperation {
            capacity: 1,
            poll_url: "https://arm/op".into()
        }]
    );
    // Polled on a tick, but logged as the /start's.
    assert_eq!(e[0].cause, "c1");
    let e = step(&mut s, scaled(1, ScaleOutcome::Succeeded));
    assert_eq!(kinds(&e), vec![&EffectKind::LookupInstance]);
    let e = step(&mut s, instance(Some("20.1.2.3")));
    assert_eq!(s.status, Status::Booting);
    assert_eq!(texts(&e), vec!["⏳ VM up at 20.1.2.3, loading the world…"]);

    // The agent reports the same address: said once only.
    let e = step(
        &mut s,
        game(
            "g1",
            GameEvent::VmUp(VmUp {
                vm_name: "valheim_0".into(),
                public_ip: Some("20.1.2.3".into()),
            }),
        ),
    );
    assert!(e.is_empty());

    let e = step(&mut s, game("g2", GameEvent::ServerReady(ready())));
    assert_eq!(s.status, Status::Running);
    // Said once, where the players who asked look: in the /start reply.
    assert_eq!(kinds(&e).len(), 1, "ready is said once");
    assert!(matches!(e[0].kind, EffectKind::EditReply { .. }));
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
    let e = step(&mut s, command("c2", CommandKind::Start));
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
}

#[test]
fn a_vm_that_cannot_know_its_address_gets_it_from_azure() {
    let mut s = ServerState::new(Settings::default());
    step(&mut s, command("c1", CommandKind::Start));
    let vm_up = |id: &str| {
        game(
            id,
            GameEvent::VmUp(VmUp {
                vm_name: "valheim_0".into(),
                public_ip: None,
            }),
        )
    };
    // Azure has the VM but not yet its address; the agent cannot know it either.
    step(&mut s, scaled(1, ScaleOutcome::Succeeded));
    let no_address = Input::Instance {
        vm_name: Some("valheim_0".into()),
        public_ip: None,
    };
    assert!(step(&mut s, no_address).is_empty());
    let e = step(&mut s, vm_up("g0"));
    assert_eq!(texts(&e), vec!["⏳ VM up, loading the world…"]);
    // The tick asks Azure for it at once, not only every few minutes.
    let e = step(&mut s, tick("t1"));
    assert!(has(&e, |k| matches!(k, EffectKind::LookupInstance)));
    let e = step(&mut s, instance(Some("20.1.2.3")));
    assert_eq!(texts(&e), vec!["⏳ VM up at 20.1.2.3, loading the world…"]);
    // A second word from the agent, still without one, keeps the address.
    assert!(step(&mut s, vm_up("g1")).is_empty());
    assert_eq!(s.public_ip.as_deref(), Some("20.1.2.3"));
}

#[test]
fn stop_saves_first_then_scales_in() {
    let mut s = running();
    let e = step(&mut s, command("c3", CommandKind::Stop));
    assert_eq!(s.status, Status::Stopping);
    assert!(
        !has(&e, |k| matches!(k, EffectKind::Scale { .. })),
        "no scale-in before the save"
    );
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::SaveAndStop { vm_name: Some(vm), requested_by, .. }
            if vm == "valheim_0" && requested_by == "Ada"
    )));
    assert_eq!(
        texts(&e),
        vec!["⏳ Stopping the server for Ada… saving the world first."]
    );

    let e = step(
        &mut s,
        game(
            "g5",
            GameEvent::WorldSaved(WorldSaved {
                duration_ms: Some(412),
            }),
        ),
    );
    assert_eq!(texts(&e), vec!["💾 World saved (412 ms)."]);
    assert!(matches!(e[0].kind, EffectKind::EditReply { .. }));
    let e = step(
        &mut s,
        game(
            "g6",
            GameEvent::GameStopped(GameStopped {
                saved: true,
                duration_ms: 900,
            }),
        ),
    );
    assert!(matches!(
        kinds(&e)[..],
        [EffectKind::Scale { capacity: 0, .. }]
    ));
    let e = step(&mut s, scaled(0, ScaleOutcome::Succeeded));
    assert_eq!(s.status, Status::Stopped);
    assert_eq!(
        texts(&e),
        vec!["💤 Server stopped; nothing is billed until the next /start."]
    );
    assert_eq!(s.public_ip, None);
    assert_eq!(s.stop, None);
    assert!(s.outbox.is_empty());
}

#[test]
fn a_stop_without_an_answer_scales_in_after_the_timeout_and_says_what_may_be_lost() {
    let mut s = running();
    let mut clock = Clock { now: 1_000 };
    // The last autosave was 7 minutes before the /stop.
    clock.now = 10 * MIN;
    clock.step(
        &mut s,
        game(
            "g5",
            GameEvent::WorldSaved(WorldSaved { duration_ms: None }),
        ),
    );
    clock.now = 17 * MIN;
    clock.step(&mut s, command("c3", CommandKind::Stop));
    clock.now += 2 * MIN;
    let e = clock.step(&mut s, tick("t1"));
    assert!(e.is_empty(), "still within the 3 minutes: {e:?}");
    let e = clock.step(&mut s, command("c4", CommandKind::Stop));
    assert!(
        texts(&e)[0].contains("saving the world (asked 2 min ago"),
        "a second /stop says where it stands: {:?}",
        texts(&e)
    );
    clock.now += MIN;
    let e = clock.step(&mut s, tick("t2"));
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 0, .. }
    )));
    assert_eq!(
        texts(&e),
        vec!["⚠️ The game did not confirm a save within 3 min; stopping the VM anyway. The world may have lost up to 10 minutes."]
    );
    // A late report of the game changes nothing any more.
    let e = clock.step(
        &mut s,
        game(
            "g6",
            GameEvent::GameStopped(GameStopped {
                saved: false,
                duration_ms: 1,
            }),
        ),
    );
    assert!(e.is_empty());
    let e = clock.step(&mut s, scaled(0, ScaleOutcome::Succeeded));
    assert_eq!(s.status, Status::Stopped);
    assert!(texts(&e)[0].contains("Server stopped"));
}

#[test]
fn a_game_that_stops_without_saving_is_reported_honestly() {
    let mut s = running();
    step(&mut s, command("c3", CommandKind::Stop));
    let e = step(
        &mut s,
        game(
            "g6",
            GameEvent::GameStopped(GameStopped {
                saved: false,
                duration_ms: 120_000,
            }),
        ),
    );
    assert!(texts(&e)[0].starts_with("⚠️ The game stopped without saving"));
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 0, .. }
    )));
}

#[test]
fn stop_before_the_game_is_up_scales_in_at_once() {
    let mut s = ServerState::new(Settings::default());
    step(&mut s, command("c1", CommandKind::Start));
    let e = step(&mut s, command("c2", CommandKind::Stop));
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 0, .. }
    )));
    assert!(!has(&e, |k| matches!(k, EffectKind::SaveAndStop { .. })));
    // The poll of the replaced scale-up does not settle the scale-in.
    step(&mut s, scaled(1, ScaleOutcome::Succeeded));
    assert_eq!(s.status, Status::Stopping);
    step(&mut s, scaled(0, ScaleOutcome::Succeeded));
    assert_eq!(s.status, Status::Stopped);
}

fn eviction(kind: EvictionKind) -> GameEvent {
    GameEvent::EvictionComing(EvictionComing {
        kind,
        scheduled_event_id: String::new(),
        not_before: "Mon, 11 Apr 2022 22:26:58 GMT".into(),
    })
}

#[test]
fn an_eviction_saves_waits_for_azure_and_settles_stopped() {
    let mut s = running();
    let e = step(&mut s, game("g7", eviction(EvictionKind::Preempt)));
    assert_eq!(s.status, Status::Stopping);
    assert_eq!(
        texts(&e),
        vec![
            "⚠️ Azure is reclaiming the spot VM (by 22:26:58 UTC at the latest); saving the world…"
        ]
    );
    assert!(matches!(e[0].kind, EffectKind::PostMessage { .. }));
    let e = step(
        &mut s,
        game(
            "g8",
            GameEvent::WorldSaved(WorldSaved {
                duration_ms: Some(14),
            }),
        ),
    );
    assert_eq!(texts(&e), vec!["💾 World saved (14 ms)."]);
    let e = step(
        &mut s,
        game(
            "g9",
            GameEvent::GameStopped(GameStopped {
                saved: true,
                duration_ms: 3000,
            }),
        ),
    );
    assert_eq!(kinds(&e), vec![&EffectKind::LookupInstance]);
    // Azure has not taken it yet: wait, and ask again on the tick.
    assert!(step(&mut s, instance(Some("20.1.2.3"))).is_empty());
    let e = step(&mut s, tick("t1"));
    assert_eq!(kinds(&e), vec![&EffectKind::LookupInstance]);
    let e = step(&mut s, instance(None));
    assert!(matches!(
        kinds(&e)[..],
        [EffectKind::Scale { capacity: 0, .. }]
    ));
    let e = step(&mut s, scaled(0, ScaleOutcome::Succeeded));
    assert_eq!(
        texts(&e),
        vec!["💤 Azure took the spot VM; /start to play again."]
    );
    assert_eq!(s.status, Status::Stopped);
    // And the next /start works.
    let e = step(&mut s, command("c9", CommandKind::Start));
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 1, .. }
    )));
}

#[test]
fn a_maintenance_restart_comes_back_without_scaling() {
    let mut s = running();
    step(&mut s, game("g7", eviction(EvictionKind::Reboot)));
    let e = step(
        &mut s,
        game(
            "g9",
            GameEvent::GameStopped(GameStopped {
                saved: true,
                duration_ms: 3000,
            }),
        ),
    );
    assert_eq!(s.status, Status::Booting);
    assert!(!has(&e, |k| matches!(k, EffectKind::Scale { .. })));
    step(&mut s, game("g10", GameEvent::ServerReady(ready())));
    assert_eq!(s.status, Status::Running);
}

#[test]
fn a_silent_agent_stops_the_vm() {
    let mut s = running();
    let mut clock = Clock { now: 14 * MIN };
    clock.step(
        &mut s,
        game(
            "hb",
            GameEvent::Heartbeat(Heartbeat {
                players: vec!["Freya".into()],
            }),
        ),
    );
    clock.now = 28 * MIN;
    let e = clock.step(&mut s, tick("t1"));
    assert!(!has(&e, |k| matches!(k, EffectKind::Scale { .. })));
    clock.now = 30 * MIN;
    let e = clock.step(&mut s, tick("t2"));
    assert_eq!(
        texts(&e),
        vec!["⚠️ No word from the VM for 15 min; stopping it so that it does not bill."]
    );
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 0, .. }
    )));
    assert!(matches!(
        s.stop.as_ref().map(|s| &s.cause),
        Some(StopCause::Lost {
            reason: LostReason::Silent
        })
    ));
    let e = clock.step(&mut s, scaled(0, ScaleOutcome::Succeeded));
    assert_eq!(s.status, Status::Stopped);
    assert!(texts(&e)[0].contains("/start to play again"));
}

#[test]
fn a_vm_that_vanished_is_noticed_by_the_instance_check() {
    let mut s = running();
    let clock = Clock { now: 6 * MIN };
    let e = clock.step(&mut s, tick("t1"));
    assert_eq!(kinds(&e), vec![&EffectKind::LookupInstance]);
    let e = clock.step(&mut s, tick("t2"));
    assert!(e.is_empty(), "checked a moment ago");
    let e = clock.step(&mut s, instance(None));
    assert!(texts(&e)[0].starts_with("⚠️ The VM is gone without notice"));
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 0, .. }
    )));
    assert_eq!(s.status, Status::Stopping);
}

#[test]
fn a_refused_scale_in_ends_failed_and_tells_the_owner_where_to_look() {
    let mut s = running();
    step(&mut s, command("c3", CommandKind::Stop));
    step(
        &mut s,
        game(
            "g6",
            GameEvent::GameStopped(GameStopped {
                saved: true,
                duration_ms: 1,
            }),
        ),
    );
    // "Not now" is retried…
    step(
        &mut s,
        scaled(
            0,
            ScaleOutcome::Retry {
                reason: "TooManyRequests".into(),
                retry_after_ms: Some(1),
            },
        ),
    );
    assert_eq!(s.status, Status::Stopping);
    // …a refusal for good is said, with what to do.
    let e = step(
        &mut s,
        scaled(
            0,
            ScaleOutcome::Failed {
                message: "AuthorizationFailed: no role".into(),
            },
        ),
    );
    assert_eq!(s.status, Status::Failed);
    assert_eq!(
        texts(&e),
        vec!["❌ Azure refused to stop the VM (AuthorizationFailed: no role); it may still be running and billing. Look in the Azure portal, then /stop again."]
    );
    // /stop tries again.
    let e = step(&mut s, command("c4", CommandKind::Stop));
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 0, .. }
    )));
}

#[test]
fn heartbeats_heal_the_player_list_and_are_not_remembered() {
    let mut s = running();
    let beat = |players: Vec<&str>| {
        game(
            "hb-same-id",
            GameEvent::Heartbeat(Heartbeat {
                players: players.into_iter().map(str::to_owned).collect(),
            }),
        )
    };
    step(&mut s, beat(vec![]));
    assert!(s.players.is_empty());
    step(&mut s, beat(vec!["Thorvald"]));
    assert_eq!(s.players, vec!["Thorvald"]);
}

#[test]
fn a_redelivered_event_changes_nothing() {
    let mut s = ServerState::new(Settings::default());
    step(&mut s, command("c1", CommandKind::Start));
    let before = s.clone();
    assert!(step(&mut s, command("c1", CommandKind::Start)).is_empty());
    assert_eq!(s, before);
}

#[test]
fn start_while_running_only_answers() {
    let mut s = ServerState::new(Settings::default());
    step(&mut s, command("c1", CommandKind::Start));
    let e = step(&mut s, command("c2", CommandKind::Start));
    assert_eq!(e.len(), 1);
    assert!(texts(&e)[0].starts_with("ℹ️ Already starting: 0 s in"));
    let stop_when_stopped = step(
        &mut ServerState::new(Settings::default()),
        command("c3", CommandKind::Stop),
    );
    assert!(texts(&stop_when_stopped)[0].contains("stopped"));
}

#[test]
fn effects_stay_in_the_outbox_until_done() {
    let mut s = ServerState::new(Settings::default());
    let e = s.apply(command("c1", CommandKind::Start), 1_000).effects;
    assert_eq!(s.outbox, e);
    // A tick while the scale request is still queued adds no second one.
    assert!(s.apply(tick("t1"), 2_000).effects.is_empty());
    s.done(&[e[0].id.clone()]);
    assert_eq!(s.outbox.len(), 1);
    // The scale request was carried out but its answer lost: the tick asks again.
    let again = s.apply(tick("t2"), 3_000).effects;
    assert!(matches!(
        kinds(&again)[..],
        [EffectKind::Scale { capacity: 1, .. }]
    ));
    // Only effects old enough are handed out for retry.
    assert_eq!(
        s.due_effects(3_500, 1_000).len(),
        1,
        "the reply edit from t=1000"
    );
    assert_eq!(s.due_effects(3_500, 10_000).len(), 0);
}

#[test]
fn a_failed_effect_waits_longer_each_time_and_is_given_up_in_the_end() {
    let mut s = ServerState::new(Settings::default());
    let e = s.apply(command("c1", CommandKind::Start), 0).effects;
    let edit = e[1].id.clone();
    // Discord said when: that is the wait.
    assert!(s.retry_later(&edit, 10_000, Some(30_000)).is_none());
    assert!(!s.due_effects(39_999, 0).iter().any(|x| x.id == edit));
    assert!(s.due_effects(40_000, 0).iter().any(|x| x.id == edit));
    // Otherwise a doubling delay, and at last the effect comes back to be logged.
    let mut now = 40_000;
    let mut waits = Vec::new();
    let given_up = loop {
        let before = now;
        if let Some(gone) = s.retry_later(&edit, now, None) {
            break gone;
        }
        now = s
            .outbox
            .iter()
            .find(|x| x.id == edit)
            .unwrap()
            .not_before_ms;
        waits.push(now - before);
    };
    assert_eq!(&waits[..3], &[4_000, 8_000, 16_000]);
    assert!(waits.iter().all(|w| *w <= 5 * MIN));
    assert_eq!(given_up.id, edit);
    assert!(!s.outbox.iter().any(|x| x.id == edit));
    assert_eq!(s.give_up("no-such-effect"), None);
}

#[test]
fn a_full_outbox_pushes_out_old_messages_and_says_which() {
    let mut s = ServerState::new(Settings::default());
    step(&mut s, command("c1", CommandKind::Start));
    let mut dropped = Vec::new();
    for i in 0..40 {
        // Nothing is reported done: Discord is down.
        let applied = s.apply(command(&format!("q{i}"), CommandKind::Start), 1_000);
        dropped.extend(applied.dropped);
    }
    assert_eq!(s.outbox.len(), 32);
    assert_eq!(dropped.len(), 40 - 32);
    assert!(dropped
        .iter()
        .all(|e| matches!(e.kind, EffectKind::EditReply { .. })));
}

#[test]
fn a_final_error_ends_the_start_failed_and_the_next_start_is_allowed() {
    let mut s = ServerState::new(Settings::default());
    step(&mut s, command("c1", CommandKind::Start));
    let e = step(
        &mut s,
        scaled(
            1,
            ScaleOutcome::Failed {
                message: "AuthorizationFailed: no role".into(),
            },
        ),
    );
    // Capacity 0 is made sure of first (a failed allocation may have left it at 1).
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 0, .. }
    )));
    let e = step(&mut s, scaled(0, ScaleOutcome::Succeeded));
    assert_eq!(s.status, Status::Failed);
    assert_eq!(
        texts(&e),
        vec!["❌ Could not start the server: AuthorizationFailed: no role. Nothing is billed; /start to try again."]
    );
    let shown = crate::status::status_embed(&s, 1_000, Default::default());
    assert_eq!(
        shown.description,
        "Could not start the server: AuthorizationFailed: no role. Use /start to try again."
    );
    let e = step(&mut s, command("c3", CommandKind::Start));
    assert_eq!(s.status, Status::Starting);
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 1, .. }
    )));
}

#[test]
fn not_now_is_retried_after_retry_after_and_only_a_final_answer_fails() {
    let mut s = ServerState::new(Settings::default());
    let clock = |now| Clock { now };
    clock(0).step(&mut s, command("c1", CommandKind::Start));
    let e = clock(1_000).step(
        &mut s,
        scaled(
            1,
            ScaleOutcome::Retry {
                reason: "TooManyRequests: slow down".into(),
                retry_after_ms: Some(20_000),
            },
        ),
    );
    assert_eq!(s.status, Status::Starting, "not a failure");
    assert_eq!(
        texts(&e),
        vec!["⏳ Azure asked us to wait (TooManyRequests); trying again in 20 s…"]
    );
    assert!(clock(20_999).step(&mut s, tick("t1")).is_empty(), "waits");
    let e = clock(21_000).step(&mut s, tick("t2"));
    assert!(matches!(
        kinds(&e)[..],
        [EffectKind::Scale { capacity: 1, .. }]
    ));
    // /start meanwhile says how far along it is.
    let e = clock(30_000).step(&mut s, command("c2", CommandKind::Start));
    assert_eq!(
        texts(&e),
        vec!["ℹ️ Already starting: 30 s in, waiting for Azure to make the VM; Azure asked us to wait (TooManyRequests)."]
    );
    // A second "not now" waits longer (a 5xx says nothing of when), quietly.
    let e = clock(31_000).step(
        &mut s,
        scaled(
            1,
            ScaleOutcome::Retry {
                reason: "ServiceUnavailable".into(),
                retry_after_ms: None,
            },
        ),
    );
    assert!(e.is_empty());
    assert_eq!(s.operation.as_ref().unwrap().not_before_ms, 35_000);
    clock(35_000).step(&mut s, tick("t3"));
    clock(36_000).step(&mut s, scaled(1, ScaleOutcome::Succeeded));
    assert_eq!(s.status, Status::Starting);
    assert!(s.operation.is_none());
}

#[test]
fn an_operation_that_azure_keeps_refusing_fails_in_the_end() {
    let mut s = ServerState::new(Settings::default());
    step(&mut s, command("c1", CommandKind::Start));
    let busy = || {
        scaled(
            1,
            ScaleOutcome::Retry {
                reason: "Conflict: another operation".into(),
                retry_after_ms: None,
            },
        )
    };
    for _ in 0..10 {
        step(&mut s, busy());
        assert_eq!(s.status, Status::Starting);
    }
    let e = step(&mut s, busy());
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 0, .. }
    )));
    step(&mut s, scaled(0, ScaleOutcome::Succeeded));
    assert_eq!(s.status, Status::Failed);
    assert!(s.failure.as_deref().unwrap().contains("kept answering"));
}

fn sizes() -> Settings {
    Settings {
        vm_sizes: vec!["Standard_D2as_v4".into(), "Standard_D2s_v3".into()],
        ..Settings::default()
    }
}

#[test]
fn no_spot_capacity_moves_on_to_the_next_size_and_says_which_runs() {
    let mut s = ServerState::new(sizes());
    let e = step(&mut s, command("c1", CommandKind::Start));
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 1, size: Some(size) } if size == "Standard_D2as_v4"
    )));
    let e = step(
        &mut s,
        scaled(
            1,
            ScaleOutcome::NoCapacity {
                reason: "AllocationFailed: Allocation failed.".into(),
                region: Some("westeurope".into()),
            },
        ),
    );
    assert_eq!(
        texts(&e),
        vec!["⏳ Azure has no spot D2as_v4 in westeurope right now (AllocationFailed); trying a spot D2s_v3…"]
    );
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 1, size: Some(size) } if size == "Standard_D2s_v3"
    )));
    step(&mut s, scaled(1, ScaleOutcome::Succeeded));
    step(&mut s, instance(Some("20.1.2.3")));
    let e = step(&mut s, game("g1", GameEvent::ServerReady(ready())));
    assert!(texts(&e)[0].ends_with("— running on a spot D2s_v3"));
}

#[test]
fn when_no_size_has_capacity_the_start_ends_at_capacity_zero_and_says_so() {
    let mut s = ServerState::new(sizes());
    step(&mut s, command("c1", CommandKind::Start));
    let none = || {
        scaled(
            1,
            ScaleOutcome::NoCapacity {
                reason: "SkuNotAvailable: not available".into(),
                region: Some("westeurope".into()),
            },
        )
    };
    step(&mut s, none());
    let e = step(&mut s, none());
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 0, .. }
    )));
    let e = step(&mut s, scaled(0, ScaleOutcome::Succeeded));
    assert_eq!(s.status, Status::Failed);
    assert_eq!(
        texts(&e),
        vec!["❌ Azure has no spot capacity for D2as_v4, D2s_v3 in westeurope right now. Try again later, or add VM sizes to vm_sizes. Nothing is billed; /start to try again."]
    );
    // The next start tries the first choice again.
    let e = step(&mut s, command("c2", CommandKind::Start));
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 1, size: Some(size) } if size == "Standard_D2as_v4"
    )));
}

#[test]
fn a_start_that_never_gets_ready_goes_back_to_capacity_zero_with_what_was_seen() {
    let mut s = ServerState::new(Settings::default());
    let clock = |now| Clock { now };
    clock(0).step(&mut s, command("c1", CommandKind::Start));
    clock(1_000).step(&mut s, scaled(1, ScaleOutcome::Succeeded));
    clock(2_000).step(&mut s, instance(Some("20.1.2.3")));
    assert_eq!(s.status, Status::Booting);
    // The agent came up, then nothing: no ready.
    clock(3 * MIN).step(
        &mut s,
        game(
            "g0",
            GameEvent::VmUp(VmUp {
                vm_name: "valheim_0".into(),
                public_ip: None,
            }),
        ),
    );
    let e = clock(14 * MIN).step(&mut s, tick("t1"));
    assert!(!has(&e, |k| matches!(k, EffectKind::Scale { .. })));
    let e = clock(15 * MIN).step(&mut s, tick("t2"));
    assert!(has(&e, |k| matches!(
        k,
        EffectKind::Scale { capacity: 0, .. }
    )));
    let e = clock(15 * MIN + 1_000).step(&mut s, scaled(0, ScaleOutcome::Succeeded));
    assert_eq!(s.status, Status::Failed);
    assert_eq!(
        texts(&e),
        vec!["❌ The server was not ready within 15 min: the VM came up at 20.1.2.3 but the game never said it was ready (the agent last reported 12 min ago). Nothing is billed; /start to try again."]
    );
}

fn idle_settings() -> Settings {
    Settings {
        idle_ms: 20 * MIN,
        ..Settings::default()
    }
}

#[test]
fn an_empty_server_warns_then_saves_and_stops_itself() {
    let mut s = ServerState::new(idle_settings());
    let clock = |now| Clock { now };
    step(&mut s, command("c1", CommandKind::Start));
    step(&mut s, scaled(1, ScaleOutcome::Succeeded));
    step(&mut s, instance(Some("20.1.2.3")));
    step(&mut s, game("g1", GameEvent::ServerReady(ready())));
    // Ready at t=1 s with nobody on; heartbeats keep the VM in contact.
    let beat = |id: &str| game(id, GameEvent::Heartbeat(Heartbeat { players: vec![] }));
    clock(10 * MIN).step(&mut s, beat("hb1"));
    assert!(texts(&clock(14 * MIN).step(&mut s, tick("t1"))).is_empty());
    let e = clock(15 * MIN + 1_000).step(&mut s, tick("t2"));
    assert_eq!(
        texts(&e),
        vec![
            "⚠️ Nobody has been online for 15 min; the server stops in 5 min unless someone joins."
        ]
    );
    assert!(
        texts(&clock(16 * MIN).step(&mut s, tick("t3"))).is_empty(),
        "warned once"
    );
    let e = clock(20 * MIN + 1_000).step(&mut s, tick("t4"));
    assert_eq!(s.status, Status::Stopping);
    assert!(has(&e, |k| matches!(k, EffectKind::SaveAndStop { .. })));
    assert_eq!(
        texts(&e),
        vec!["⏳ Nobody has been online for 20 min: saving the world and stopping the server…"]
    );
    clock(20 * MIN + 2_000).step(
        &mut s,
        game(
            "g2",
            GameEvent::GameStopped(GameStopped {
                saved: true,
                duration_ms: 1,
            }),
        ),
    );
    let e = clock(20 * MIN + 3_000).step(&mut s, scaled(0, ScaleOutcome::Succeeded));
    assert_eq!(
        texts(&e),
        vec!["💤 Server stopped after 20 min without players; /start to play again."]
    );
}

#[test]
fn someone_joining_calls_the_idle_stop_off() {
    let mut s = running();
    s.settings = Settings {
        silence_timeout_ms: u64::MAX,
        ..idle_settings()
    };
    let clock = |now| Clock { now };
    clock(MIN).step(
        &mut s,
        game(
            "g3",
            GameEvent::PlayerLeft(Player {
                character: "Freya".into(),
            }),
        ),
    );
    clock(16 * MIN + 1_000).step(&mut s, tick("t1"));
    assert!(s.idle_warned);
    let e = clock(17 * MIN).step(
        &mut s,
        game(
            "g4",
            GameEvent::PlayerJoined(Player {
                character: "Thorvald".into(),
            }),
        ),
    );
    assert_eq!(
        texts(&e),
        vec!["⚔️ Thorvald joined (1 online); the server stays up"]
    );
    let e = clock(60 * MIN).step(&mut s, tick("t2"));
    assert!(!has(&e, |k| matches!(k, EffectKind::SaveAndStop { .. })));
    assert_eq!(s.status, Status::Running);
}

#[test]
fn idle_minutes_zero_keeps_an_empty_server_up() {
    let mut s = running();
    s.settings.idle_ms = 0;
    s.settings.silence_timeout_ms = u64::MAX;
    let clock = |now| Clock { now };
    clock(MIN).step(
        &mut s,
        game(
            "g3",
            GameEvent::PlayerLeft(Player {
                character: "Freya".into(),
            }),
        ),
    );
    assert!(clock(600 * MIN)
        .step(&mut s, tick("t1"))
        .iter()
        .all(|e| matches!(e.kind, EffectKind::LookupInstance)));
    assert_eq!(s.status, Status::Running);
}

#[test]
fn state_round_trips_through_json() {
    let mut s = running();
    s.apply(command("c3", CommandKind::Stop), 5);
    let json = serde_json::to_string(&s).unwrap();
    let back: ServerState = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    assert_eq!(back.outbox, s.outbox);
    assert_eq!(back.stop, s.stop);
}

#[test]
fn a_second_ready_only_updates_the_join_code() {
    let mut s = ServerState::new(Settings::default());
    step(&mut s, command("c1", CommandKind::Start));
    step(&mut s, scaled(1, ScaleOutcome::Succeeded));
    step(&mut s, instance(Some("20.1.2.3")));
    step(&mut s, game("g1", GameEvent::ServerReady(ready())));
    assert!(step(&mut s, game("g2", GameEvent::ServerReady(ready()))).is_empty());
    let coded = ServerReady {
        world_name: Some("Vanaheim".into()),
        join_code: Some("371904".into()),
    };
    let e = step(&mut s, game("g3", GameEvent::ServerReady(coded)));
    assert_eq!(texts(&e), vec!["ℹ️ Crossplay join code: 371904"]);
    assert!(matches!(e[0].kind, EffectKind::PostMessage { .. }));
    assert_eq!(s.status, Status::Running);
    // A new code later is said as such; the same code again says nothing.
    let changed = |id: &str, code: &str| {
        game(
            id,
            GameEvent::JoinCodeChanged(JoinCodeChanged {
                join_code: code.into(),
            }),
        )
    };
    let e = step(&mut s, changed("g4", "552018"));
    assert_eq!(
        texts(&e),
        vec!["ℹ️ New crossplay join code: 552018 (the old one no longer works)."]
    );
    assert!(step(&mut s, changed("g5", "552018")).is_empty());
    assert_eq!(s.join_code.as_deref(), Some("552018"));
}

#[test]
fn a_join_code_made_while_loading_is_said_with_ready() {
    let mut s = ServerState::new(Settings::default());
    step(&mut s, command("c1", CommandKind::Start));
    step(&mut s, scaled(1, ScaleOutcome::Succeeded));
    step(&mut s, instance(Some("20.1.2.3")));
    let code = GameEvent::JoinCodeChanged(JoinCodeChanged {
        join_code: "1234".into(),
    });
    assert!(step(&mut s, game("g1", code)).is_empty());
    let e = step(&mut s, game("g2", GameEvent::ServerReady(ready())));
    assert_eq!(
        texts(&e),
        vec![
            "✅ Server is ready! Join at 20.1.2.3:2456 (world Vanaheim), crossplay join code 1234"
        ]
    );
}

#[test]
fn the_months_vm_time_runs_from_azures_answer_to_capacity_zero() {
    let mut s = ServerState::new(Settings::default());
    s.apply(command("c1", CommandKind::Start), 1_000);
    assert_eq!(s.vm_ms_this_month(500_000), 0, "no VM yet");
    s.apply(scaled(1, ScaleOutcome::Succeeded), 100_000);
    s.apply(game("g1", GameEvent::ServerReady(ready())), 200_000);
    assert_eq!(s.vm_ms_this_month(400_000), 300_000);
    s.apply(command("c2", CommandKind::Stop), 3_000_000);
    let stopped = GameStopped {
        saved: true,
        duration_ms: 50,
    };
    s.apply(game("g2", GameEvent::GameStopped(stopped)), 3_100_000);
    s.apply(scaled(0, ScaleOutcome::Succeeded), 3_700_000);
    assert_eq!(s.status, Status::Stopped);
    assert_eq!(s.vm_ms_this_month(9_000_000), 3_600_000);
}

#[test]
fn one_drainer_at_a_time_until_the_lease_runs_out() {
    let mut s = ServerState::new(Settings::default());
    assert!(s.acquire_lease("a", 1_000, 500));
    assert!(!s.acquire_lease("b", 1_200, 500), "held by a");
    assert!(s.acquire_lease("a", 1_300, 500), "a renews");
    assert!(s.acquire_lease("b", 1_801, 500), "expired: b takes over");
    s.release_lease("a");
    assert_eq!(s.drain_lease.as_ref().map(|l| l.owner.as_str()), Some("b"));
    s.release_lease("b");
    assert_eq!(s.drain_lease, None);
}
