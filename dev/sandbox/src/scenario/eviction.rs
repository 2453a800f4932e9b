//! The spot eviction evening: the server runs with a player on it when Azure announces that it
//! takes the spot VM back, 30 s ahead (the least notice a spot VM gets). The agent warns, saves
//! the world and approves the eviction; the bot says so and ends at "stopped"; a new /start
//! brings the server back.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::{freya_joins, Play};
use crate::transcript::Transcript;
use crate::Sandbox;

/// Spot VMs get as little as 30 s.
pub const NOTICE: Duration = Duration::from_secs(30);

pub struct Outcome {
    pub transcript: Transcript,
    /// From the notice in Scheduled Events to the agent's approval of it.
    pub notice_to_approval: Duration,
    /// From the notice to "Azure took the spot VM" in Discord.
    pub notice_to_announced: Duration,
    /// Approvals the metadata service received.
    pub approvals: usize,
}

pub async fn play(sandbox: &Sandbox) -> anyhow::Result<Outcome> {
    let mut play = Play::new(sandbox);
    let asked = Instant::now();
    play.command("/start", "Ada").await?;
    play.vm_running(true).await?;
    play.wait_for("Server is ready", asked).await?;
    let at = play.game(&freya_joins())?;
    play.wait_for("Freya Stormborn joined", at).await?;

    play.note("(Azure needs the capacity back: a Preempt event for the VM, 30 s ahead)");
    let noticed = Instant::now();
    let event_id = sandbox
        .metadata
        .schedule("Preempt", NOTICE)
        .context("no VM to evict")?;
    play.wait_for("Azure is reclaiming the spot VM", noticed)
        .await?;
    play.wait_for("World saved", noticed).await?;
    let notice_to_announced = play.wait_for("Azure took the spot VM", noticed).await?;
    play.vm_running(false).await?;
    play.status("stopped").await?;
    let approvals = sandbox.metadata.approvals();
    let approval = approvals
        .iter()
        .find(|a| a.event_id == event_id)
        .context("the agent never approved the eviction")?;

    play.note("(later that evening)");
    let asked = Instant::now();
    play.command("/start", "Ada").await?;
    play.vm_running(true).await?;
    play.wait_for("Server is ready", asked).await?;
    let asked = Instant::now();
    play.command("/stop", "Ada").await?;
    play.wait_for("Server stopped", asked).await?;
    play.status("stopped").await?;

    Ok(Outcome {
        transcript: play.finish(),
        notice_to_approval: approval.at - noticed,
        notice_to_announced,
        approvals: approvals.len(),
    })
}
