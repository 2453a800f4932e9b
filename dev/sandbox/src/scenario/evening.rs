//! The default evening: forged requests are refused, then /start, the server comes up, a player
//! joins and leaves, /status, and /stop, which saves the world before the VM goes.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::{freya_joins, freya_leaves, Play};
use crate::player::{Answer, Forgery};
use crate::transcript::Transcript;
use crate::Sandbox;

/// What happened, for the caller to print or check.
pub struct Outcome {
    pub transcript: Transcript,
    /// The answer to Discord's PING.
    pub ping: Answer,
    /// Status codes of the forged /start requests.
    pub forged: Vec<(&'static str, u16)>,
    /// Messages on the command queue right after the forged requests.
    pub queued_after_forgeries: usize,
    /// How long after the game printed them its events reached Discord (ready, join, leave).
    pub event_latencies: Vec<Duration>,
    /// From sending /stop to the scale set at capacity 0 (the save comes first).
    pub stop_to_capacity_zero: Duration,
    /// Tokens the app asked Entra for, from /start to the server ready.
    pub tokens_for_start: usize,
}

pub async fn play(sandbox: &Sandbox) -> anyhow::Result<Outcome> {
    let mut play = Play::new(sandbox);
    let ping = sandbox.player.ping().await?;
    let mut forged = Vec::new();
    for (what, forgery) in [
        ("wrong key", Forgery::WrongKey),
        ("replayed", Forgery::OldTimestamp),
    ] {
        let prepared = sandbox.player.prepare("start", "Mallory");
        forged.push((what, sandbox.player.send(prepared, forgery).await?.status));
    }
    let queued_after_forgeries = sandbox.storage.peek(&sandbox.storage.commands).await?.len();

    let mut latencies = Vec::new();
    play.command("/start", "Ada").await?;
    play.vm_running(true).await?;
    let booted = Instant::now();
    play.note("(the VM boots; the game container starts and prints its log)");
    latencies.push(play.wait_for("Server is ready", booted).await?);
    let tokens_for_start = sandbox.arm.token_requests();

    let at = play.game(&freya_joins())?;
    latencies.push(play.wait_for("Freya Stormborn joined", at).await?);
    let at = play.game(&freya_leaves())?;
    latencies.push(play.wait_for("Freya Stormborn left", at).await?);

    let status = play.command("/status", "Ada").await?;
    anyhow::ensure!(
        status.embed()["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("✅ Running")),
        "/status shows the server running: {}",
        status.body
    );
    play.command("/help", "Freya").await?;

    let asked = Instant::now();
    play.command("/stop", "Ada").await?;
    play.wait_for("Server stopped", asked).await?;
    let stop_to_capacity_zero = sandbox
        .arm
        .timed_patches()
        .into_iter()
        .find(|(capacity, at)| *capacity == 0 && *at >= asked)
        .map(|(_, at)| at - asked)
        .context("the scale set never got its PATCH to 0")?;
    play.vm_running(false).await?;
    play.status("stopped").await?;

    Ok(Outcome {
        transcript: play.finish(),
        ping,
        forged,
        queued_after_forgeries,
        event_latencies: latencies,
        stop_to_capacity_zero,
        tokens_for_start,
    })
}
