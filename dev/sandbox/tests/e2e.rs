//! End to end: the real release `.wasm` components on the local Spin host, and on real Spin
//! where it is installed, with Azurite, the fakes of ARM/Entra/Discord/the metadata service,
//! and on the simulated VM the real agent binary and the game process (both built by
//! `cargo test --workspace`, or by scripts/test).

#[macro_use]
mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{evening_said, first_at, said, with_sandbox};
use heimdall_events::{Command, CommandKind, Envelope, EventBody, InteractionReply, Requester};
use heimdall_sandbox::app_host::HostKind;
use heimdall_sandbox::scenario::{evening, eviction, freya_joins, freya_leaves, select, Play};
use heimdall_sandbox::{Options, Sandbox, SERVER_ID};

on_every_host!(
    a_discord_evening_saves_the_world_before_the_vm_goes,
    a_game_that_never_saves_is_stopped_after_the_timeout_and_said_so,
    a_spot_eviction_is_saved_for_approved_and_the_next_start_works,
    an_agent_killed_mid_stream_loses_and_repeats_nothing,
    a_vm_that_vanishes_without_notice_does_not_leave_the_bot_stuck,
    refusals_and_poison_messages,
    a_burst_of_commands_is_answered_in_full,
    no_reply_or_message_mentions_anyone,
);

async fn a_discord_evening_saves_the_world_before_the_vm_goes(host: HostKind) {
    let (outcome, patches, timed, statuses, messages, leftovers) =
        with_sandbox(host, Options::default(), async |sandbox| {
            let outcome = evening::play(sandbox).await?;
            let storage = &sandbox.storage;
            let mut leftovers = Vec::new();
            for queue in [
                &storage.commands,
                &storage.events,
                &storage.poison,
                &storage.control,
            ] {
                leftovers.push(storage.peek(queue).await?.len());
            }
            Ok((
                outcome,
                sandbox.arm.capacity_patches(),
                sandbox.arm.timed_patches(),
                sandbox.statuses.sequence(),
                sandbox.discord.messages(),
                leftovers,
            ))
        })
        .await;
    println!("{}", outcome.transcript);

    assert_eq!(outcome.ping.status, 200);
    assert_eq!(outcome.ping.body, serde_json::json!({ "type": 1 }));
    assert_eq!(outcome.forged, vec![("wrong key", 401), ("replayed", 401)]);
    assert_eq!(
        outcome.queued_after_forgeries, 0,
        "a refused request enqueues nothing"
    );
    assert_eq!(
        patches,
        vec![1, 0],
        "one PATCH to 1 for /start, one to 0 for /stop"
    );
    // A tick may create the entity, as stopped, before /start arrives: that first "stopped"
    // depends on timing; everything after it must not.
    let from_start: Vec<&str> = statuses
        .iter()
        .map(String::as_str)
        .skip_while(|s| *s == "stopped")
        .collect();
    assert_eq!(
        from_start,
        ["starting", "booting", "running", "stopping", "stopped"],
        "the state entity's statuses: {statuses:?}"
    );
    let expected = evening_said();
    assert_eq!(
        said(&messages),
        expected,
        "Discord messages, in order (false = reply edit, true = channel)"
    );
    // The order that keeps the world: the agent took the control message and stopped the game,
    // the game saved, and only then did the scale set get its PATCH to 0.
    let saved = first_at(&messages, "World saved");
    let (_, scaled_in) = timed[1];
    assert!(saved < scaled_in, "the save came before the PATCH to 0");
    assert!(scaled_in < first_at(&messages, "Server stopped"));
    assert_eq!(
        leftovers,
        vec![0, 0, 0, 0],
        "commands, events, poison and control queues are empty"
    );
    assert_eq!(outcome.event_latencies.len(), 3, "ready, joined, left");
}

async fn a_game_that_never_saves_is_stopped_after_the_timeout_and_said_so(host: HostKind) {
    let options = Options {
        game_hangs: true,
        ..Options::default()
    };
    let (messages, patches) = with_sandbox(host, options, async |sandbox| {
        let mut play = Play::new(sandbox);
        let asked = Instant::now();
        play.command("/start", "Ada").await?;
        play.wait_for("Server is ready", asked).await?;
        let asked = Instant::now();
        play.command("/stop", "Ada").await?;
        play.wait_for("Server stopped", asked).await?;
        play.status("stopped").await?;
        println!("{}", play.finish());
        Ok((sandbox.discord.messages(), sandbox.arm.capacity_patches()))
    })
    .await;
    let texts: Vec<String> = said(&messages).into_iter().map(|(_, t)| t).collect();
    let stop = texts
        .iter()
        .position(|t| t.starts_with("⏳ Stopping"))
        .expect("the stop began");
    assert_eq!(
        texts[stop + 1..],
        [
            "⚠️ The game did not confirm a save within 3 s; stopping the VM anyway. The world may have lost up to 1 minute.",
            "💤 Server stopped; nothing is billed until the next /start.",
        ]
    );
    assert!(!texts.iter().any(|t| t.contains("World saved")));
    assert_eq!(patches, vec![1, 0]);
}

async fn a_spot_eviction_is_saved_for_approved_and_the_next_start_works(host: HostKind) {
    let (outcome, patches, messages, statuses) =
        with_sandbox(host, Options::default(), async |sandbox| {
            let outcome = eviction::play(sandbox).await?;
            Ok((
                outcome,
                sandbox.arm.capacity_patches(),
                sandbox.discord.messages(),
                sandbox.statuses.sequence(),
            ))
        })
        .await;
    println!("{}", outcome.transcript);
    let channel: Vec<String> = said(&messages)
        .into_iter()
        .filter(|(channel, _)| *channel)
        .map(|(_, text)| text)
        .collect();
    let warning = channel
        .iter()
        .position(|t| t.starts_with("⚠️ Azure is reclaiming the spot VM"))
        .expect("a warning");
    assert_eq!(
        channel[warning + 1..warning + 3],
        [
            "💾 World saved (14 ms).",
            "💤 Azure took the spot VM; /start to play again."
        ]
    );
    assert_eq!(outcome.approvals, 1, "the agent approved the eviction once");
    assert!(
        outcome.notice_to_approval < eviction::NOTICE,
        "approved within the notice: {:?}",
        outcome.notice_to_approval
    );
    // Azure took the VM (and its capacity) itself; then /start and /stop.
    assert_eq!(patches, vec![1, 1, 0]);
    let after_eviction: Vec<&str> = statuses
        .iter()
        .map(String::as_str)
        .skip_while(|s| *s != "stopping")
        .collect();
    assert_eq!(
        after_eviction,
        ["stopping", "stopped", "starting", "booting", "running", "stopping", "stopped"]
    );
}

async fn an_agent_killed_mid_stream_loses_and_repeats_nothing(host: HostKind) {
    let messages = with_sandbox(host, Options::default(), async |sandbox| {
        let mut play = Play::new(sandbox);
        let asked = Instant::now();
        play.command("/start", "Ada").await?;
        play.wait_for("Server is ready", asked).await?;
        let thorvald = select(&[
            "client 76561198022222222",
            "SteamID 76561198022222222",
            "76561198022222222 has wrong password",
            "from Thorvald",
        ]);
        let at = play.game(&freya_joins())?;
        play.wait_for("Freya Stormborn joined", at).await?;
        play.game(&thorvald)?;
        play.game(&freya_leaves())?;
        // SIGKILL while those lines are being read and sent; systemd starts it again, and it
        // reads the log from the start.
        sandbox.vm.restart_agent();
        play.wait_for("Freya Stormborn left", at).await?;
        play.wait_for("Thorvald joined", at).await?;
        // Everything the restarted agent could repeat has had time to arrive.
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("{}", play.finish());
        Ok(sandbox.discord.messages())
    })
    .await;
    // In the channel or in the /start reply: each said once.
    let all: Vec<String> = said(&messages).into_iter().map(|(_, text)| text).collect();
    for text in [
        "Freya Stormborn joined",
        "Thorvald joined",
        "Freya Stormborn left",
        "Server is ready",
    ] {
        let count = all.iter().filter(|t| t.contains(text)).count();
        assert_eq!(count, 1, "{text:?} said {count} times: {all:#?}");
    }
}

async fn a_vm_that_vanishes_without_notice_does_not_leave_the_bot_stuck(host: HostKind) {
    let (messages, patches) = with_sandbox(host, Options::default(), async |sandbox| {
        let mut play = Play::new(sandbox);
        let asked = Instant::now();
        play.command("/start", "Ada").await?;
        play.wait_for("Server is ready", asked).await?;
        play.note("(the VM disappears: no Scheduled Event, no word from the agent)");
        let gone = Instant::now();
        sandbox.arm.evict();
        play.wait_for("The VM is gone without notice", gone).await?;
        play.wait_for("/start to play again", gone).await?;
        play.status("stopped").await?;
        let asked = Instant::now();
        play.command("/start", "Ada").await?;
        play.wait_for("Server is ready", asked).await?;
        println!("{}", play.finish());
        Ok((sandbox.discord.messages(), sandbox.arm.capacity_patches()))
    })
    .await;
    assert!(said(&messages)
        .iter()
        .any(|(channel, text)| *channel && text.starts_with("⚠️ The VM is gone without notice")));
    assert_eq!(
        patches,
        vec![1, 1],
        "nothing to scale in: Azure had taken it"
    );
}

async fn refusals_and_poison_messages(host: HostKind) {
    with_sandbox(host, Options::default(), refusals).await;
}

/// A forged command from the VM: the VM's identity may put on `events`, so a command found there
/// did not come through Discord's signature and the role check.
fn command_from_the_vm() -> String {
    Envelope::new(
        "cmd-1300000000000000999".into(),
        SERVER_ID.into(),
        0,
        EventBody::Command(Command {
            kind: CommandKind::Start,
            requester: Requester {
                user_id: "1".into(),
                name: "Mallory".into(),
                roles: vec![],
            },
            guild_id: Some("1200000000000000001".into()),
            channel_id: "1200000000000000002".into(),
            reply: InteractionReply {
                application_id: "1100000000000000000".into(),
                interaction_id: "1300000000000000999".into(),
                token: "forged".into(),
            },
        }),
    )
    .to_json()
}

async fn refusals(sandbox: &Sandbox) -> anyhow::Result<()> {
    let http = heimdall_sandbox::client::HttpClient::default();
    let base = format!("http://{}", sandbox.host.addr());

    // The kick and tick routes want the app's secret; the scaler is not reachable at all.
    for (path, bearer) in [("/reactions/kick", "wrong"), ("/reactions/tick", "")] {
        let request = http::Request::post(format!("{base}{path}"))
            .header("authorization", format!("Bearer {bearer}"))
            .body(Vec::new())?;
        assert_eq!(
            http.send(request).await?.status(),
            401,
            "{path} without the secret"
        );
    }
    let scaler =
        http::Request::post(format!("{base}/capacity")).body(br#"{"capacity":1}"#.to_vec())?;
    assert_eq!(
        http.send(scaler).await?.status(),
        404,
        "the scaler is private"
    );

    // Garbage and a command on the game-event queue are set aside on the first delivery.
    let storage = &sandbox.storage;
    for text in ["not an event".to_owned(), command_from_the_vm()] {
        let put = storage.events.put_message(&text, SystemTime::now());
        assert_eq!(http.send(put).await?.status(), 201);
    }
    let kick = http::Request::post(format!("{base}/reactions/kick"))
        .header("authorization", format!("Bearer {}", sandbox.app_secret))
        .body(Vec::new())?;
    let kicked = http.send(kick).await?;
    assert_eq!(
        kicked.status(),
        200,
        "{}",
        String::from_utf8_lossy(kicked.body())
    );
    assert_eq!(storage.peek(&storage.poison).await?.len(), 2);
    assert_eq!(storage.peek(&storage.events).await?.len(), 0);
    assert_eq!(
        sandbox.arm.capacity_patches(),
        Vec::<u32>::new(),
        "nothing was scaled"
    );
    let status = storage.status(SERVER_ID).await?;
    assert!(
        matches!(status.as_deref(), None | Some("stopped")),
        "and no state changed: {status:?}"
    );
    Ok(())
}

/// Many commands at once: every kick wakes reactions, but one invocation drains at a time, so
/// nobody loses the race for the state entity and every reply is edited.
async fn a_burst_of_commands_is_answered_in_full(host: HostKind) {
    with_sandbox(host, Options::default(), async |sandbox| {
        burst(sandbox, 12).await
    })
    .await;
}

async fn burst(sandbox: &Sandbox, count: usize) -> anyhow::Result<()> {
    let prepared: Vec<_> = (0..count)
        .map(|i| sandbox.player.prepare("stop", &format!("Viking{i}")))
        .collect();
    for p in &prepared {
        sandbox.discord.register_interaction(&p.token);
    }
    let sends = prepared.into_iter().map(|p| {
        sandbox
            .player
            .send(p, heimdall_sandbox::player::Forgery::None)
    });
    for answer in futures::future::join_all(sends).await {
        assert_eq!(answer?.status, 200);
    }
    let edits = sandbox
        .discord
        .wait_for_messages(count, Duration::from_secs(30))
        .await;
    assert_eq!(edits.len(), count, "one edited reply per command");
    assert!(edits.iter().all(|m| m.content.contains("stopped")));
    let storage = &sandbox.storage;
    assert_eq!(storage.peek(&storage.commands).await?.len(), 0);
    assert_eq!(storage.peek(&storage.poison).await?.len(), 0);
    Ok(())
}

/// Names are text: whatever a player or a character is called, no message Heimdall sends, reply
/// or channel message, ephemeral or not, pings anyone.
async fn no_reply_or_message_mentions_anyone(host: HostKind) {
    let (answers, requests) = with_sandbox(host, Options::default(), async |sandbox| {
        let mut play = Play::new(sandbox);
        let asked = Instant::now();
        play.command("/help", "@everyone").await?;
        play.command("/status", "@here").await?;
        play.command("/start", "@everyone").await?;
        play.wait_for("Server is ready", asked).await?;
        let at = play.game(&["Nov 24 20:00:00 supervisord: valheim-server 11/24/2026 20:00:00: Got character ZDOID from @everyone : -1:1"])?;
        play.wait_for("@everyone joined", at).await?;
        play.command("/status", "@here").await?;
        let asked = Instant::now();
        play.command("/stop", "@everyone").await?;
        play.wait_for("Server stopped", asked).await?;
        println!("{}", play.finish());
        Ok((sandbox.player.answers(), sandbox.discord.requests()))
    })
    .await;
    let kinds: Vec<(u64, bool, bool)> = answers
        .iter()
        .map(|a| {
            (
                a["type"].as_u64().unwrap_or(0),
                a["data"]["flags"].as_u64().unwrap_or(0) & 64 != 0,
                a["data"]["embeds"].is_array(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&(4, true, false)),
        "an ephemeral reply: {kinds:?}"
    );
    assert!(kinds.contains(&(4, false, true)), "an embed: {kinds:?}");
    assert!(kinds.contains(&(4, false, false)), "a message: {kinds:?}");
    for answer in &answers {
        assert_eq!(
            answer["data"]["allowed_mentions"],
            serde_json::json!({ "parse": [] }),
            "{answer}"
        );
    }
    let paths: Vec<String> = requests.iter().map(|r| r.uri.path().to_owned()).collect();
    assert!(
        paths.iter().any(|p| p.ends_with("/messages/@original")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.starts_with("/api/v10/channels/")),
        "{paths:?}"
    );
    for request in &requests {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        assert_eq!(
            body["allowed_mentions"],
            serde_json::json!({ "parse": [] }),
            "{} {}",
            request.uri,
            request.body_text()
        );
    }
}
