//! One evening on Discord, scripted: forged requests are refused, then /start, the server comes
//! up, a player joins and leaves, /status, /stop.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use heimdall_fakes::{DiscordMessage, MessageKind};

use crate::player::{Answer, Forgery};
use crate::transcript::Transcript;
use crate::Sandbox;

/// The recorded log of a Steam evening: the parser's own fixture, so both read the same lines.
const SESSION_LOG: &str = include_str!("../../../crates/valheim-log/fixtures/valheim-session.log");
/// Longest wait for any one step; a healthy run needs well under a second per step.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// What happened, for the caller to print or check.
pub struct Outcome {
    pub transcript: Transcript,
    /// Status codes of the PING and of the forged /start requests.
    pub ping: Answer,
    pub forged: Vec<(&'static str, u16)>,
    /// Messages on the queue right after the forged requests.
    pub queued_after_forgeries: usize,
    /// How long after being queued each game event reached Discord (from the agent's log line).
    pub event_latencies: Vec<Duration>,
}

pub async fn play(sandbox: &Sandbox) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let mut transcript = Transcript::new(start);
    let ping = sandbox.player.ping().await?;

    let mut forged = Vec::new();
    for (what, forgery) in [
        ("wrong key", Forgery::WrongKey),
        ("replayed", Forgery::OldTimestamp),
    ] {
        let prepared = sandbox.player.prepare("start", "Mallory");
        forged.push((what, sandbox.player.send(prepared, forgery).await?.status));
    }
    let queued_after_forgeries = sandbox.storage.peek(&sandbox.storage.events).await?.len();

    let mut latencies = Vec::new();
    command(sandbox, &mut transcript, "/start", "Ada").await?;
    wait_until(&mut sandbox.vm.running.clone(), true).await?;
    transcript.note("(the VM boots; the game container starts and prints its log)");
    let at = log(sandbox, boot_lines())?;
    latencies.push(wait_for(sandbox, "Server is ready", at).await?);

    let at = log(
        sandbox,
        select(&[
            "client 76561198011111111",
            "SteamID 76561198011111111",
            "from Freya Stormborn",
        ]),
    )?;
    latencies.push(wait_for(sandbox, "Freya Stormborn joined", at).await?);
    let at = log(
        sandbox,
        select(&["socket 76561198011111111", "zdo 2093847561:1"]),
    )?;
    latencies.push(wait_for(sandbox, "Freya Stormborn left", at).await?);

    let token = command(sandbox, &mut transcript, "/status", "Ada").await?;
    wait_for_edit(sandbox, &token).await?;

    command(sandbox, &mut transcript, "/stop", "Ada").await?;
    wait_for(sandbox, "Server stopped", Instant::now()).await?;
    wait_until(&mut sandbox.vm.running.clone(), false).await?;
    if !sandbox.statuses.wait_for("stopped", STEP_TIMEOUT).await {
        bail!("the state entity never said stopped");
    }

    transcript.add_discord(&sandbox.discord.messages());
    Ok(Outcome {
        transcript,
        ping,
        forged,
        queued_after_forgeries,
        event_latencies: latencies,
    })
}

/// Sends a slash command and records it and the immediate answer; returns its token.
async fn command(
    sandbox: &Sandbox,
    transcript: &mut Transcript,
    name: &str,
    user: &str,
) -> anyhow::Result<String> {
    let prepared = sandbox.player.prepare(name.trim_start_matches('/'), user);
    sandbox.discord.register_interaction(&prepared.token);
    transcript.command(user, name, &prepared.token);
    let answer = sandbox.player.send(prepared, Forgery::None).await?;
    if answer.status != 200 {
        bail!("{name} was answered with HTTP {}", answer.status);
    }
    transcript.reply(name, &answer.content());
    Ok(answer.token)
}

fn log(sandbox: &Sandbox, lines: Vec<&str>) -> anyhow::Result<Instant> {
    sandbox.vm.log.append(&lines)?;
    Ok(Instant::now())
}

/// The boot of the game, up to the line that says it listens.
fn boot_lines() -> Vec<&'static str> {
    let lines: Vec<&str> = SESSION_LOG.lines().collect();
    let end = lines
        .iter()
        .position(|l| l.contains("Server is now listening"))
        .map_or(lines.len(), |i| i + 1);
    lines[..end].to_vec()
}

fn select(needles: &[&str]) -> Vec<&'static str> {
    SESSION_LOG
        .lines()
        .filter(|line| needles.iter().any(|n| line.contains(n)))
        .collect()
}

/// Waits for a Discord message containing `text`; returns how long after `since` it arrived.
async fn wait_for(sandbox: &Sandbox, text: &str, since: Instant) -> anyhow::Result<Duration> {
    let found = poll(|| {
        sandbox
            .discord
            .messages()
            .into_iter()
            .find(|m| m.content.contains(text) && m.at >= since)
    })
    .await
    .with_context(|| format!("no Discord message with {text:?} within {STEP_TIMEOUT:?}"))?;
    Ok(found.at.saturating_duration_since(since))
}

async fn wait_for_edit(sandbox: &Sandbox, token: &str) -> anyhow::Result<DiscordMessage> {
    poll(|| {
        sandbox.discord.messages().into_iter().find(|m| {
            matches!(&m.kind, MessageKind::ReplyEdit { interaction_token } if interaction_token == token)
        })
    })
    .await
    .context("the reply to /status was never edited")
}

async fn poll<T>(mut find: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(found) = find() {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("timed out")
}

async fn wait_until(
    running: &mut tokio::sync::watch::Receiver<bool>,
    wanted: bool,
) -> anyhow::Result<()> {
    tokio::time::timeout(STEP_TIMEOUT, running.wait_for(|r| *r == wanted))
        .await
        .with_context(|| {
            format!(
                "the VM did not become {}",
                if wanted { "running" } else { "deallocated" }
            )
        })?
        .map(|_| ())
        .context("the VM watcher stopped")
}
