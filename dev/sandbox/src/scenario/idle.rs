//! Nobody plays: the last player leaves, the server warns the channel, then saves the world and
//! stops itself, the way /stop does. (The idle time is 12 s here, 20 minutes by default.)

use std::time::{Duration, Instant};

use super::{freya_joins, freya_leaves, Play};
use crate::transcript::Transcript;
use crate::{Options, Sandbox};

pub fn options() -> Options {
    Options {
        idle: Duration::from_secs(12),
        ..Options::default()
    }
}

pub struct Outcome {
    pub transcript: Transcript,
    /// From the last player leaving to the warning, and to the server stopped.
    pub left_to_warning: Duration,
    pub left_to_stopped: Duration,
}

pub async fn play(sandbox: &Sandbox) -> anyhow::Result<Outcome> {
    let mut play = Play::new(sandbox);
    let asked = Instant::now();
    play.command("/start", "Ada").await?;
    play.wait_for("Server is ready", asked).await?;
    let at = play.game(&freya_joins())?;
    play.wait_for("Freya Stormborn joined", at).await?;
    let left = play.game(&freya_leaves())?;
    play.wait_for("Freya Stormborn left", left).await?;
    play.note("(nobody plays any more)");
    let left_to_warning = play.wait_for("Nobody has been online for", left).await?;
    play.wait_for("World saved", left).await?;
    let left_to_stopped = play.wait_for("Server stopped after", left).await?;
    play.status("stopped").await?;
    Ok(Outcome {
        transcript: play.finish(),
        left_to_warning,
        left_to_stopped,
    })
}
