//! What players read in Discord. One place, so the wording stays consistent.

use heimdall_events::EvictionKind;

use crate::stop::{LostReason, StopCause, StopPhase};
use crate::{ServerState, Status};

/// Valheim writes the world every 20 minutes: at most this much play is lost to a stop that
/// did not save, if the autosave worked.
const AUTOSAVE_MINUTES: u64 = 20;

pub(crate) fn starting(who: &str) -> String {
    format!("⏳ Starting the server for {who}… asking Azure for a VM.")
}

pub(crate) fn saving(who: &str) -> String {
    format!("🛑 Stopping the server for {who}… 💾 saving the world first.")
}

pub(crate) fn stopping_before_ready(who: &str) -> String {
    format!("🛑 Stopping the server for {who} (the game was not up yet, nothing to save)…")
}

pub(crate) fn vm_up(state: &ServerState) -> String {
    match &state.public_ip {
        Some(ip) => format!("🖥️ VM up at {ip}, loading world…"),
        None => "🖥️ VM up, loading world…".into(),
    }
}

pub(crate) fn ready(state: &ServerState) -> String {
    let mut text = format!("✅ Server is ready! Join at {}", address(state));
    if let Some(world) = &state.world {
        text.push_str(&format!(" (world {world})"));
    }
    if let Some(code) = &state.join_code {
        text.push_str(&format!(", crossplay join code {code}"));
    }
    text
}

pub(crate) fn world_saved(duration_ms: Option<u32>) -> String {
    match duration_ms {
        Some(ms) => format!("💾 World saved ({ms} ms)."),
        None => "💾 World saved.".into(),
    }
}

pub(crate) fn not_saved(state: &ServerState) -> String {
    format!(
        "⚠️ The game stopped without saving; the world may have lost up to {}.",
        at_risk(state)
    )
}

pub(crate) fn save_timed_out(state: &ServerState) -> String {
    format!(
        "⚠️ The game did not confirm a save within {}; stopping the VM anyway. The world may have lost up to {}.",
        duration(state.settings.save_timeout_ms),
        at_risk(state)
    )
}

/// The farewell once capacity is 0, by why the server stopped.
pub(crate) fn stopped(state: &ServerState) -> String {
    match state.stop.as_ref().map(|s| &s.cause) {
        Some(StopCause::Eviction { .. }) => {
            "☁️ Azure took the spot VM; /start to play again.".into()
        }
        Some(StopCause::Lost { .. }) => "💤 Server stopped; /start to play again.".into(),
        Some(StopCause::Command { .. }) | None => {
            "💤 Server stopped; nothing is billed until the next /start.".into()
        }
    }
}

pub(crate) fn eviction(kind: EvictionKind, not_before: &str) -> String {
    let when = match httpdate::parse_http_date(not_before) {
        Ok(at) => format!("by {} at the latest", clock(at)),
        Err(_) => "any moment now".to_owned(),
    };
    match kind {
        EvictionKind::Preempt => {
            format!("⚠️ Azure is reclaiming the spot VM ({when}); saving the world…")
        }
        EvictionKind::Terminate => {
            format!("⚠️ Azure is removing the VM ({when}); saving the world…")
        }
        EvictionKind::Reboot | EvictionKind::Redeploy => format!(
            "🔧 Azure will restart the VM for maintenance ({when}); saving the world first…"
        ),
    }
}

pub(crate) fn restarting() -> String {
    "🔧 The world is saved; Azure is restarting the VM and the game will be back shortly.".into()
}

pub(crate) fn lost(reason: LostReason, state: &ServerState) -> String {
    match reason {
        LostReason::Vanished => format!(
            "📡 The VM is gone without notice (Azure may have reclaimed it); the world may have lost up to {}. Making sure nothing bills…",
            at_risk(state)
        ),
        LostReason::Silent => format!(
            "📡 No word from the VM for {}; stopping it so that it does not bill.",
            duration(state.settings.silence_timeout_ms)
        ),
        LostReason::GameEnded => "🛑 The game stopped on the VM; stopping the server.".into(),
    }
}

pub(crate) fn scale_failed(capacity: u32, message: &str) -> String {
    if capacity > 0 {
        format!("❌ Could not start the server: {message}")
    } else {
        format!("❌ Azure refused to stop the VM ({message}); trying again every minute.")
    }
}

pub(crate) fn joined(character: &str, online: usize) -> String {
    format!("⚔️ {character} joined ({online} online)")
}

pub(crate) fn left(character: &str, online: usize) -> String {
    format!("👋 {character} left ({online} online)")
}

pub(crate) fn already(state: &ServerState) -> String {
    format!("ℹ️ Nothing to do: {}", status(state))
}

pub(crate) fn status(state: &ServerState) -> String {
    match state.status {
        Status::Stopped => "The server is stopped. Use /start to play.".into(),
        Status::Starting => "The server is starting: waiting for Azure.".into(),
        Status::Booting => format!(
            "The server is loading the world at {}.",
            state.public_ip.as_deref().unwrap_or("?")
        ),
        Status::Running => {
            let players = if state.players.is_empty() {
                "nobody online".to_owned()
            } else {
                format!(
                    "{} online: {}",
                    state.players.len(),
                    state.players.join(", ")
                )
            };
            format!("🟢 The server is running at {}, {players}.", address(state))
        }
        Status::Stopping => format!("The server is stopping: {}.", stop_phase(state)),
    }
}

/// Where a stop stands, for /status and a second /stop.
fn stop_phase(state: &ServerState) -> String {
    let since = |at: u64| duration(state.now_ms.saturating_sub(at));
    match state.stop.as_ref().map(|s| &s.phase) {
        Some(StopPhase::Saving { since_ms }) => format!(
            "saving the world (asked {} ago; the VM stops after {} at the latest)",
            since(*since_ms),
            duration(state.settings.save_timeout_ms)
        ),
        Some(StopPhase::AwaitingAzure { since_ms }) => format!(
            "the world is saved, Azure is taking the VM ({} so far)",
            since(*since_ms)
        ),
        Some(StopPhase::ScalingIn) | None => "Azure is removing the VM".into(),
    }
}

/// How much play a stop without a save may lose: since the last save (or since the game was
/// ready), at most the autosave interval.
fn at_risk(state: &ServerState) -> String {
    let since = state.last_saved_ms.or(state.ready_at_ms);
    let minutes = since.map_or(AUTOSAVE_MINUTES, |at| {
        state
            .now_ms
            .saturating_sub(at)
            .div_ceil(60_000)
            .clamp(1, AUTOSAVE_MINUTES)
    });
    plural(minutes, "minute")
}

/// "40 s", "3 min": how long waits read in Discord.
fn duration(ms: u64) -> String {
    if ms < 120_000 {
        format!("{} s", ms.div_ceil(1000))
    } else {
        format!("{} min", ms / 60_000)
    }
}

/// `HH:MM:SS UTC` of a moment: the time of day is what players compare with their clock.
fn clock(at: std::time::SystemTime) -> String {
    let seconds = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() % 86_400);
    format!(
        "{:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

fn address(state: &ServerState) -> String {
    format!(
        "{}:{}",
        state.public_ip.as_deref().unwrap_or("?"),
        state.settings.game_port
    )
}
