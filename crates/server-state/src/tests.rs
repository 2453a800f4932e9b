use heimdall_events::{
    Command, CommandKind, Envelope, EventBody, EvictionComing, EvictionKind, GameEvent,
    GameStopped, Heartbeat, InteractionReply, Player, Requester, ServerReady, VmUp, WorldSaved,
};

use crate::{
    Effect, EffectKind, Input, LostReason, ScaleOutcome, ServerState, Settings, Status, StopCause,
    StopPhase,
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
        let effects = state.apply(input, self.now);
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
            EffectKind::Scale { capacity: 1 },
            EffectKind::EditReply { .. }
        ]
    ));
    assert!(texts(&e)[0].contains("Starting"));

    let e = step(
        &mut s,
        scaled(
            1,
            ScaleOutcome::InProgress {
                poll_url: "https://arm/op".into(),
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
    let e = step(&mut s, scaled(1, ScaleOutcome::Succeeded));
    assert_eq!(kinds(&e), vec![&EffectKind::LookupInstance]);
    let e = step(&mut s, instance(Some("20.1.2.3")));
    assert_eq!(s.status, Status::Booting);
    assert_eq!(texts(&e), vec!["🖥️ VM up at 20.1.2.3, loading world…"]);

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
    assert_eq!(texts(&e), vec!["🖥️ VM up, loading world…"]);
    // The tick asks Azure for it at once, not only every few minutes.
    let e = step(&mut s, tick("t1"));
    assert!(has(&e, |k| matches!(k, EffectKind::LookupInstance)));
    let e = step(&mut s, instance(Some("20.1.2.3")));
    assert_eq!(texts(&e), vec!["🖥️ VM up at 20.1.2.3, loading world…"]);
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
        vec!["🛑 Stopping the server for Ada… 💾 saving the world first."]
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
    assert_eq!(kinds(&e), vec![&EffectKind::Scale { capacity: 0 }]);
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
    assert!(has(&e, |k| matches!(k, EffectKind::Scale { capacity: 0 })));
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
    assert!(has(&e, |k| matches!(k, EffectKind::Scale { capacity: 0 })));
}

#[test]
fn stop_before_the_game_is_up_scales_in_at_once() {
    let mut s = ServerState::new(Settings::default());
    step(&mut s, command("c1", CommandKind::Start));
    let e = step(&mut s, command("c2", CommandKind::Stop));
    assert!(has(&e, |k| matches!(k, EffectKind::Scale { capacity: 0 })));
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
    assert_eq!(kinds(&e), vec![&EffectKind::Scale { capacity: 0 }]);
    let e = step(&mut s, scaled(0, ScaleOutcome::Succeeded));
    assert_eq!(
        texts(&e),
        vec!["☁️ Azure took the spot VM; /start to play again."]
    );
    assert_eq!(s.status, Status::Stopped);
    // And the next /start works.
    let e = step(&mut s, command("c9", CommandKind::Start));
    assert!(has(&e, |k| matches!(k, EffectKind::Scale { capacity: 1 })));
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
        vec!["📡 No word from the VM for 15 min; stopping it so that it does not bill."]
    );
    assert!(has(&e, |k| matches!(k, EffectKind::Scale { capacity: 0 })));
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
    assert!(texts(&e)[0].starts_with("📡 The VM is gone without notice"));
    assert!(has(&e, |k| matches!(k, EffectKind::Scale { capacity: 0 })));
    assert_eq!(s.status, Status::Stopping);
}

#[test]
fn a_refused_scale_in_is_said_once_and_retried() {
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
    let failed = || {
        scaled(
            0,
            ScaleOutcome::Failed {
                message: "AuthorizationFailed".into(),
            },
        )
    };
    let e = step(&mut s, failed());
    assert_eq!(texts(&e).len(), 1);
    assert_eq!(s.status, Status::Stopping);
    let e = step(&mut s, tick("t1"));
    assert_eq!(kinds(&e), vec![&EffectKind::Scale { capacity: 0 }]);
    assert!(step(&mut s, failed()).is_empty(), "said once");
    assert!(matches!(
        s.stop.as_ref().map(|s| &s.phase),
        Some(StopPhase::ScalingIn)
    ));
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
    assert!(texts(&e)[0].starts_with("ℹ️ Nothing to do"));
    let stop_when_stopped = step(
        &mut ServerState::new(Settings::default()),
        command("c3", CommandKind::Stop),
    );
    assert!(texts(&stop_when_stopped)[0].contains("stopped"));
}

#[test]
fn effects_stay_in_the_outbox_until_done() {
    let mut s = ServerState::new(Settings::default());
    let e = s.apply(command("c1", CommandKind::Start), 1_000);
    assert_eq!(s.outbox, e);
    // A tick while the scale request is still queued adds no second one.
    assert!(s.apply(tick("t1"), 2_000).is_empty());
    s.done(&[e[0].id.clone()]);
    assert_eq!(s.outbox.len(), 1);
    // The scale request was carried out but its answer lost: the tick asks again.
    let again = s.apply(tick("t2"), 3_000);
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
    let mut s = ServerState::new(Settings::default());
    step(&mut s, command("c1", CommandKind::Start));
    let e = step(
        &mut s,
        scaled(
            1,
            ScaleOutcome::Failed {
                message: "SkuNotAvailable".into(),
            },
        ),
    );
    assert_eq!(s.status, Status::Stopped);
    assert!(texts(&e)[0].contains("Could not start the server: SkuNotAvailable"));
    assert_eq!(s.operation, None);
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
    assert_eq!(kinds(&e).len(), 1);
    assert!(texts(&e)[0].contains("crossplay join code 371904"));
    assert_eq!(s.status, Status::Running);
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
