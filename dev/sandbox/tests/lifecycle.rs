//! End to end, the paths that are not the happy evening: idle shutdown, a start that never gets
//! ready, Azure answering "not now" or having no capacity, Discord rate limits, at-least-once
//! delivery, a lost ETag race and a hostile queue message. The real `.wasm` components in the
//! local host (and on real Spin where it is installed), with Azurite, the fakes, the real agent
//! and the fake game; timings shortened by configuration only.

#[macro_use]
mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{evening_said, said, texts, with_sandbox};
use heimdall_events::{Command, CommandKind, Envelope, EventBody, InteractionReply, Requester};
use heimdall_fakes::Fault;
use heimdall_sandbox::app_host::HostKind;
use heimdall_sandbox::proxy::StorageFaults;
use heimdall_sandbox::scenario::{capacity, evening, freya_joins, idle, Play};
use heimdall_sandbox::{Options, SERVER_ID};

on_every_host!(
    an_empty_server_warns_then_saves_and_stops_itself,
    someone_joining_calls_the_idle_stop_off,
    a_start_that_never_gets_ready_goes_back_to_capacity_zero_and_says_why,
    a_throttled_and_busy_azure_still_starts_the_server,
    no_capacity_for_the_first_size_and_the_second_runs,
    no_capacity_anywhere_ends_at_capacity_zero_with_a_clear_message,
    twenty_starts_at_once_make_one_capacity_patch,
    every_message_delivered_twice_is_said_once,
    a_lost_race_for_the_state_is_resolved,
    a_discord_rate_limit_is_waited_out,
    a_hostile_token_on_the_queue_goes_to_poison_without_a_panic,
);

fn patches(sandbox: &heimdall_sandbox::Sandbox) -> Vec<(u32, Option<String>)> {
    sandbox
        .arm
        .patches()
        .into_iter()
        .map(|p| (p.capacity, p.size))
        .collect()
}

async fn an_empty_server_warns_then_saves_and_stops_itself(host: HostKind) {
    let (outcome, messages, patches) = with_sandbox(host, idle::options(), async |sandbox| {
        let outcome = idle::play(sandbox).await?;
        Ok((
            outcome,
            texts(&sandbox.discord.messages()),
            patches(sandbox),
        ))
    })
    .await;
    println!("{}", outcome.transcript);
    let left = messages
        .iter()
        .position(|t| t.contains("Freya Stormborn left"))
        .expect("she left");
    let after: Vec<&str> = messages[left + 1..].iter().map(String::as_str).collect();
    assert_eq!(after.len(), 4, "{after:#?}");
    assert!(after[0].starts_with("⚠️ Nobody has been online for"));
    assert!(after[0].ends_with("unless someone joins."));
    assert_eq!(
        after[1..],
        [
            "⏳ Nobody has been online for 12 s: saving the world and stopping the server…",
            "💾 World saved (14 ms).",
            "💤 Server stopped after 12 s without players; /start to play again."
        ]
    );
    assert!(outcome.left_to_warning < outcome.left_to_stopped);
    assert!(outcome.left_to_stopped >= Duration::from_secs(12));
    assert_eq!(patches, vec![(1, None), (0, None)]);
}

async fn someone_joining_calls_the_idle_stop_off(host: HostKind) {
    let (messages, status) = with_sandbox(host, idle::options(), async |sandbox| {
        let mut play = Play::new(sandbox);
        let asked = Instant::now();
        play.command("/start", "Ada").await?;
        let ready = Instant::now();
        play.wait_for("Server is ready", asked).await?;
        play.wait_for("Nobody has been online for", ready).await?;
        let at = play.game(&freya_joins())?;
        play.wait_for("the server stays up", at).await?;
        // Well past the idle time since the server got ready.
        tokio::time::sleep(Duration::from_secs(14)).await;
        let status = sandbox.storage.status(SERVER_ID).await?;
        println!("{}", play.finish());
        Ok((texts(&sandbox.discord.messages()), status))
    })
    .await;
    assert_eq!(status.as_deref(), Some("running"));
    assert!(messages.contains(&"⚔️ Freya Stormborn joined (1 online); the server stays up".into()));
    assert!(!messages.iter().any(|t| t.contains("stopping the server")));
}

async fn a_start_that_never_gets_ready_goes_back_to_capacity_zero_and_says_why(host: HostKind) {
    let options = Options {
        game_never_ready: true,
        start_timeout: Duration::from_secs(6),
        ..Options::default()
    };
    let (messages, patches, status) = with_sandbox(host, options, async |sandbox| {
        let mut play = Play::new(sandbox);
        let asked = Instant::now();
        let token = play.command("/start", "Ada").await?.token;
        play.wait_for("Nothing is billed", asked).await?;
        play.status("failed").await?;
        let status = play.command("/status", "Ada").await?.text();
        play.wait_for_edit(&token).await?;
        println!("{}", play.finish());
        Ok((texts(&sandbox.discord.messages()), patches(sandbox), status))
    })
    .await;
    let failure = messages
        .iter()
        .find(|t| t.starts_with("❌"))
        .expect("a failure message");
    assert!(
        failure.starts_with("❌ The server was not ready within 6 s: the VM came up at 203.0.113.10 but the game never said it was ready (the agent last reported"),
        "{failure}"
    );
    assert!(failure.ends_with("Nothing is billed; /start to try again."));
    assert_eq!(patches, vec![(1, None), (0, None)]);
    assert!(
        status.starts_with("❌ Failed for ")
            && status.contains("\n    The server was not ready within 6 s"),
        "/status says what went wrong: {status}"
    );
}

async fn a_throttled_and_busy_azure_still_starts_the_server(host: HostKind) {
    let (messages, patches, status) = with_sandbox(host, Options::default(), async |sandbox| {
        sandbox.arm.inject(Fault::Throttle {
            count: 1,
            retry_after_s: 1,
        });
        sandbox.arm.inject(Fault::ServerError {
            count: 1,
            status: 503,
        });
        sandbox.arm.inject(Fault::Busy { count: 1 });
        sandbox.arm.inject(Fault::Accepted { count: 1 });
        let mut play = Play::new(sandbox);
        let asked = Instant::now();
        play.command("/start", "Ada").await?;
        play.wait_for("Azure asked us to wait", asked).await?;
        // While Azure makes the start wait, /status still answers at once, from the table.
        let status_asked = Instant::now();
        let status = play.command("/status", "Freya").await?;
        let status = (status.text(), status_asked.elapsed());
        play.wait_for("Server is ready", asked).await?;
        println!("{}", play.finish());
        Ok((texts(&sandbox.discord.messages()), patches(sandbox), status))
    })
    .await;
    let (status, took) = status;
    assert!(status.starts_with("⏳ Starting for "), "{status}");
    assert!(
        status.contains("waiting for Azure to make the VM"),
        "{status}"
    );
    // Discord gives up on an interaction after 3 s.
    assert!(took < Duration::from_secs(3), "/status took {took:?}");
    assert!(
        messages
            .iter()
            .any(|t| t.starts_with("⏳ Azure asked us to wait (TooManyRequests)")),
        "{messages:#?}"
    );
    assert!(!messages.iter().any(|t| t.starts_with("❌")));
    assert_eq!(
        patches,
        vec![(1, None)],
        "the refused PATCH changed nothing"
    );
}

async fn no_capacity_for_the_first_size_and_the_second_runs(host: HostKind) {
    let (messages, patches) = with_sandbox(host, Options::default(), async |sandbox| {
        let transcript = capacity::play(sandbox).await?;
        println!("{transcript}");
        Ok((texts(&sandbox.discord.messages()), patches(sandbox)))
    })
    .await;
    assert!(messages.contains(
        &"⏳ Azure has no spot D2as_v4 in westeurope right now (AllocationFailed); trying a spot D2s_v3…".into()
    ));
    assert!(
        messages
            .iter()
            .any(|t| t.starts_with("✅ Server is ready!")
                && t.ends_with("— running on a spot D2s_v3"))
    );
    assert_eq!(
        patches,
        vec![(1, None), (1, Some("Standard_D2s_v3".into())), (0, None)]
    );
}

async fn no_capacity_anywhere_ends_at_capacity_zero_with_a_clear_message(host: HostKind) {
    let (messages, patches) = with_sandbox(host, Options::default(), async |sandbox| {
        sandbox
            .arm
            .no_capacity_for(&["Standard_D2as_v4", "Standard_D2s_v3"]);
        let mut play = Play::new(sandbox);
        let asked = Instant::now();
        play.command("/start", "Ada").await?;
        play.wait_for("Nothing is billed", asked).await?;
        play.status("failed").await?;
        println!("{}", play.finish());
        Ok((texts(&sandbox.discord.messages()), patches(sandbox)))
    })
    .await;
    assert_eq!(
        messages.last().map(String::as_str),
        Some("❌ Azure has no spot capacity for D2as_v4, D2s_v3 in westeurope right now. Try again later, or add VM sizes to vm_sizes. Nothing is billed; /start to try again.")
    );
    assert_eq!(
        patches,
        vec![(1, None), (1, Some("Standard_D2s_v3".into())), (0, None)]
    );
}

async fn twenty_starts_at_once_make_one_capacity_patch(host: HostKind) {
    let (patches, replies) = with_sandbox(host, Options::default(), async |sandbox| {
        let player = &sandbox.player;
        let prepared: Vec<_> = (0..20)
            .map(|i| player.prepare("start", &format!("Viking{i}")))
            .collect();
        for p in &prepared {
            sandbox.discord.register_interaction(&p.token);
        }
        let sends = prepared
            .into_iter()
            .map(|p| player.send(p, heimdall_sandbox::player::Forgery::None));
        for answer in futures::future::join_all(sends).await {
            anyhow::ensure!(answer?.status == 200);
        }
        let edits = sandbox
            .discord
            .wait_for_messages(20, Duration::from_secs(30))
            .await;
        Ok((patches(sandbox), texts(&edits)))
    })
    .await;
    assert_eq!(patches, vec![(1, None)]);
    let starting = replies
        .iter()
        .filter(|t| t.starts_with("⏳ Starting the server"))
        .count();
    let already = replies
        .iter()
        .filter(|t| t.starts_with("ℹ️ Already starting"))
        .count();
    assert_eq!((starting, already), (1, 19), "{replies:#?}");
}

async fn every_message_delivered_twice_is_said_once(host: HostKind) {
    let options = Options {
        storage_faults: StorageFaults {
            duplicate_messages: true,
            state_conflicts: 0,
        },
        ..Options::default()
    };
    let messages = with_sandbox(host, options, async |sandbox| {
        let outcome = evening::play(sandbox).await?;
        println!("{}", outcome.transcript);
        Ok(sandbox.discord.messages())
    })
    .await;
    assert_eq!(said(&messages), evening_said());
}

async fn a_lost_race_for_the_state_is_resolved(host: HostKind) {
    let options = Options {
        storage_faults: StorageFaults {
            duplicate_messages: false,
            state_conflicts: 5,
        },
        ..Options::default()
    };
    let (messages, left) = with_sandbox(host, options, async |sandbox| {
        let outcome = evening::play(sandbox).await?;
        println!("{}", outcome.transcript);
        Ok((sandbox.discord.messages(), sandbox.state_conflicts_left()))
    })
    .await;
    assert_eq!(left, 0, "reactions lost five races for the entity (412)");
    assert_eq!(said(&messages), evening_said());
}

async fn a_discord_rate_limit_is_waited_out(host: HostKind) {
    let (messages, waited) = with_sandbox(host, Options::default(), async |sandbox| {
        let mut play = Play::new(sandbox);
        sandbox.discord.rate_limit(1, 3.0);
        let asked = Instant::now();
        let token = play.command("/stop", "Ada").await?.token;
        let edit = play.wait_for_edit(&token).await?;
        println!("{}", play.finish());
        Ok((sandbox.discord.messages(), edit.at - asked))
    })
    .await;
    assert_eq!(
        texts(&messages),
        ["ℹ️ Nothing to do: The server is stopped; nothing is billed. Use /start to play."]
    );
    assert!(
        waited >= Duration::from_secs(3),
        "after retry_after: {waited:?}"
    );
}

async fn a_hostile_token_on_the_queue_goes_to_poison_without_a_panic(host: HostKind) {
    with_sandbox(host, Options::default(), async |sandbox| {
        let hostile = Envelope::new(
            "cmd-1300000000000000777".into(),
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
                    interaction_id: "1300000000000000777".into(),
                    token: "../../channels/1/messages?x=\n".into(),
                },
            }),
        );
        let http = heimdall_sandbox::client::HttpClient::default();
        let storage = &sandbox.storage;
        let put = storage
            .commands
            .put_message(&hostile.to_json(), SystemTime::now());
        anyhow::ensure!(http.send(put).await?.status() == 201);
        let kick = http::Request::post(format!("http://{}/reactions/kick", sandbox.host.addr()))
            .header("authorization", format!("Bearer {}", sandbox.app_secret))
            .body(Vec::new())?;
        let kicked = http.send(kick).await?;
        assert_eq!(kicked.status(), 200, "reactions answered: no trap");
        assert_eq!(storage.peek(&storage.poison).await?.len(), 1);
        assert_eq!(storage.peek(&storage.commands).await?.len(), 0);
        assert_eq!(sandbox.arm.capacity_patches(), Vec::<u32>::new());
        // And the app still works.
        let mut play = Play::new(sandbox);
        let token = play.command("/stop", "Ada").await?.token;
        play.wait_for_edit(&token).await?;
        Ok(())
    })
    .await;
}
