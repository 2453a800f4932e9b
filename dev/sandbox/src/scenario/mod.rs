//! Discord evenings, scripted: each scenario plays one capability on the real components and
//! prints it as the conversation a player sees. `Play` holds what they share: sending slash
//! commands, having the game print lines, and waiting (boundedly) for what must follow.

pub mod capacity;
pub mod evening;
pub mod eviction;
pub mod idle;

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use heimdall_fakes::{DiscordMessage, MessageKind};

use crate::player::{Answer, Forgery};
use crate::transcript::Transcript;
use crate::Sandbox;

/// The recorded log of a Steam evening: the parser's own fixture, so both read the same lines.
pub const SESSION_LOG: &str =
    include_str!("../../../../crates/valheim-log/fixtures/valheim-session.log");
/// Longest wait for any one step; a healthy run needs well under a second per step.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A scenario in progress.
pub struct Play<'a> {
    pub sandbox: &'a Sandbox,
    pub transcript: Transcript,
}

impl<'a> Play<'a> {
    pub fn new(sandbox: &'a Sandbox) -> Play<'a> {
        Play {
            sandbox,
            transcript: Transcript::new(Instant::now()),
        }
    }

    /// Sends a slash command and records it and the immediate answer; returns the answer.
    pub async fn command(&mut self, name: &str, user: &str) -> anyhow::Result<Answer> {
        let player = &self.sandbox.player;
        let prepared = player.prepare(name.trim_start_matches('/'), user);
        let discord = &self.sandbox.discord;
        // Until the app's answer reaches Discord, an edit of the reply gets 10008.
        discord.interaction_sent(&prepared.token);
        self.transcript.command(user, name, &prepared.token);
        let answer = player.send(prepared, Forgery::None).await?;
        discord.register_interaction(&answer.token);
        if answer.status != 200 {
            bail!("{name} was answered with HTTP {}", answer.status);
        }
        self.transcript
            .reply(name, &answer.token, &answer.text(), answer.private());
        Ok(answer)
    }

    /// A line for the reader of the transcript, about what happens off Discord.
    pub fn note(&mut self, text: &str) {
        self.transcript.note(text);
    }

    /// The game prints these lines; returns when they were handed to it.
    pub fn game(&self, lines: &[&str]) -> anyhow::Result<Instant> {
        self.sandbox.vm.log.append(lines)?;
        Ok(Instant::now())
    }

    /// Waits for a Discord message containing `text` that arrived after `since`; returns how
    /// long after `since` it arrived.
    pub async fn wait_for(&self, text: &str, since: Instant) -> anyhow::Result<Duration> {
        let found = poll(|| {
            self.sandbox
                .discord
                .messages()
                .into_iter()
                .find(|m| m.content.contains(text) && m.at >= since)
        })
        .await
        .with_context(|| format!("no Discord message with {text:?} within {STEP_TIMEOUT:?}"))?;
        Ok(found.at.saturating_duration_since(since))
    }

    /// Waits for the first edit of the reply with `token`.
    pub async fn wait_for_edit(&self, token: &str) -> anyhow::Result<DiscordMessage> {
        poll(|| {
            self.sandbox.discord.messages().into_iter().find(|m| {
                matches!(&m.kind, MessageKind::ReplyEdit { interaction_token } if interaction_token == token)
            })
        })
        .await
        .context("the reply was never edited")
    }

    /// Waits until the simulated VM runs (or no longer does).
    pub async fn vm_running(&self, wanted: bool) -> anyhow::Result<()> {
        let mut running = self.sandbox.vm.running.clone();
        let reached = tokio::time::timeout(STEP_TIMEOUT, running.wait_for(|r| *r == wanted))
            .await
            .with_context(|| {
                format!(
                    "the VM did not become {}",
                    if wanted { "running" } else { "deallocated" }
                )
            })?
            .is_ok();
        anyhow::ensure!(reached, "the VM watcher stopped");
        Ok(())
    }

    /// Waits until the state entity says `status`.
    pub async fn status(&self, status: &str) -> anyhow::Result<()> {
        if self.sandbox.statuses.wait_for(status, STEP_TIMEOUT).await {
            Ok(())
        } else {
            bail!("the state entity never said {status}")
        }
    }

    /// The transcript, with everything the app sent to Discord.
    pub fn finish(mut self) -> Transcript {
        self.transcript
            .add_discord(&self.sandbox.discord.messages());
        self.transcript
    }
}

/// The lines of the recorded log that contain one of `needles`, in order.
pub fn select(needles: &[&str]) -> Vec<&'static str> {
    SESSION_LOG
        .lines()
        .filter(|line| needles.iter().any(|n| line.contains(n)))
        .collect()
}

/// Freya Stormborn connects and her character enters the world.
pub fn freya_joins() -> Vec<&'static str> {
    select(&[
        "client 76561198011111111",
        "SteamID 76561198011111111",
        "from Freya Stormborn",
    ])
}

/// Freya Stormborn's connection closes and her character leaves.
pub fn freya_leaves() -> Vec<&'static str> {
    select(&["socket 76561198011111111", "zdo 2093847561:1"])
}

/// Waits until `find` finds something, at most [`STEP_TIMEOUT`].
pub async fn poll<T>(mut find: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(found) = find() {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("timed out")
}
