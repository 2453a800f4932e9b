//! Azure has no spot capacity for the first VM size on the owner's list tonight: the bot says
//! so in plain words, tries the next size, and that one runs.

use std::time::Instant;

use super::Play;
use crate::transcript::Transcript;
use crate::Sandbox;

pub async fn play(sandbox: &Sandbox) -> anyhow::Result<Transcript> {
    let first = sandbox.arm.vm_size();
    sandbox.arm.no_capacity_for(&[first.as_str()]);
    let mut play = Play::new(sandbox);
    play.note(&format!(
        "(Azure has no spot {first} in the region tonight)"
    ));
    let asked = Instant::now();
    play.command("/start", "Ada").await?;
    play.wait_for("has no spot", asked).await?;
    play.wait_for("Server is ready", asked).await?;
    let asked = Instant::now();
    play.command("/stop", "Ada").await?;
    play.wait_for("Server stopped", asked).await?;
    play.status("stopped").await?;
    Ok(play.finish())
}
