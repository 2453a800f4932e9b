//! End to end: the real release `.wasm` components in the local Spin host, with Azurite, the
//! fakes of ARM/Entra/Discord and the real agent following a recorded Valheim log.

use std::time::{Duration, SystemTime};

use heimdall_fakes::MessageKind;
use heimdall_sandbox::{session, Options, Sandbox, SERVER_ID};

const IP: &str = "203.0.113.10";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_discord_evening() {
    let sandbox = Sandbox::start(Options::default())
        .await
        .expect("the sandbox starts");
    let played = session::play(&sandbox).await;
    let statuses = sandbox.statuses.sequence();
    let patches = sandbox.arm.capacity_patches();
    let messages = sandbox.discord.messages();
    let left_on_queue = sandbox.storage.peek(&sandbox.storage.events).await;
    let poisoned = sandbox.storage.peek(&sandbox.storage.poison).await;
    sandbox.shutdown().await;
    let outcome = played.expect("the session plays through");
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

    let said: Vec<(bool, String)> = messages
        .iter()
        .map(|m| {
            (
                matches!(m.kind, MessageKind::ChannelMessage { .. }),
                m.content.clone(),
            )
        })
        .collect();
    let expected: Vec<(bool, String)> = vec![
        (
            false,
            "⏳ Starting the server for Ada… asking Azure for a VM.".into(),
        ),
        (false, format!("🖥️ VM up at {IP}, loading world…")),
        (
            false,
            format!("✅ Server is ready! Join at {IP}:2456 (world Vanaheim)"),
        ),
        (
            true,
            format!("✅ Server is ready! Join at {IP}:2456 (world Vanaheim)"),
        ),
        (true, "⚔️ Freya Stormborn joined (1 online)".into()),
        (true, "👋 Freya Stormborn left (0 online)".into()),
        (
            false,
            format!("🟢 The server is running at {IP}:2456, nobody online."),
        ),
        (false, "🛑 Stopping the server for Ada…".into()),
        (
            false,
            "💤 Server stopped; nothing is billed until the next /start.".into(),
        ),
    ];
    assert_eq!(
        said, expected,
        "Discord messages, in order (false = reply edit, true = channel)"
    );

    assert_eq!(
        left_on_queue.expect("peek events").len(),
        0,
        "every event was consumed"
    );
    assert_eq!(
        poisoned.expect("peek poison").len(),
        0,
        "nothing was set aside"
    );
    // Ready, joined, left: each game event was seen to reach Discord (the session's waits are
    // bounded; the latencies themselves are reported by scripts/play, not asserted).
    assert_eq!(outcome.event_latencies.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_and_poison_messages() {
    let sandbox = Sandbox::start(Options::default())
        .await
        .expect("the sandbox starts");
    let result = refusals(&sandbox).await;
    sandbox.shutdown().await;
    result.expect("refusals behave");
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

    // Garbage on the queue is set aside on the first delivery, not retried forever.
    let garbage = sandbox
        .storage
        .events
        .put_message("not an event", SystemTime::now());
    assert_eq!(http.send(garbage).await?.status(), 201);
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
    assert_eq!(
        sandbox.storage.peek(&sandbox.storage.poison).await?.len(),
        1
    );
    assert_eq!(
        sandbox.storage.peek(&sandbox.storage.events).await?.len(),
        0
    );
    assert_eq!(
        sandbox.arm.capacity_patches(),
        Vec::<u32>::new(),
        "garbage scales nothing"
    );
    let status = sandbox.storage.status(SERVER_ID).await?;
    assert!(
        matches!(status.as_deref(), None | Some("stopped")),
        "and changes no state: {status:?}"
    );
    Ok(())
}

/// Many commands at once: every kick wakes reactions, but one invocation drains at a time, so
/// nobody loses the race for the state entity and every reply is edited.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_commands_is_answered_in_full() {
    let sandbox = Sandbox::start(Options::default())
        .await
        .expect("the sandbox starts");
    let result = burst(&sandbox, 12).await;
    sandbox.shutdown().await;
    result.expect("every command answered");
}

async fn burst(sandbox: &Sandbox, count: usize) -> anyhow::Result<()> {
    let prepared: Vec<_> = (0..count)
        .map(|i| sandbox.player.prepare("status", &format!("Viking{i}")))
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
    assert_eq!(
        sandbox.storage.peek(&sandbox.storage.events).await?.len(),
        0
    );
    assert_eq!(
        sandbox.storage.peek(&sandbox.storage.poison).await?.len(),
        0
    );
    Ok(())
}
