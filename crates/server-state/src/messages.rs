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

/// The first message of a stop that saves first.
pub(crate) fn saving(state: &ServerState) -> String {
    match state.stop.as_ref().map(|s| &s.cause) {
        Some(StopCause::Command { by }) => {
            format!("⏳ Stopping the server for {by}… saving the world first.")
        }
        Some(StopCause::Idle) => format!(
            "⏳ Nobody has been online for {}: saving the world and stopping the server…",
            duration(state.settings.idle_ms)
        ),
        _ => "⏳ Saving the world…".into(),
    }
}

pub(crate) fn stopping_before_ready(who: &str) -> String {
    format!("⏳ Stopping the server for {who} (the game was not up yet, nothing to save)…")
}

pub(crate) fn vm_up(state: &ServerState) -> String {
    match &state.public_ip {
        Some(ip) => format!("⏳ VM up at {ip}, loading the world…"),
        None => "⏳ VM up, loading the world…".into(),
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
    // Which size runs, when it is not the first choice (that one had no spot capacity).
    if let Some(size) = state.size.as_deref() {
        if state.settings.vm_sizes.first().map(String::as_str) != Some(size) {
            text.push_str(&format!(" — running on a spot {}", short_size(size)));
        }
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
            "💤 Azure took the spot VM; /start to play again.".into()
        }
        Some(StopCause::Lost { .. }) => "💤 Server stopped; /start to play again.".into(),
        Some(StopCause::Idle) => format!(
            "💤 Server stopped after {} without players; /start to play again.",
            duration(state.settings.idle_ms)
        ),
        Some(StopCause::StartFailed { reason }) => {
            format!("❌ {reason} Nothing is billed; /start to try again.")
        }
        Some(StopCause::Command { .. }) | None => {
            "💤 Server stopped; nothing is billed until the next /start.".into()
        }
    }
}

/// A failure that ended the start or the stop at once.
pub(crate) fn failed(reason: &str) -> String {
    format!("❌ {reason}")
}

pub(crate) fn could_not_start(detail: &str) -> String {
    format!("Could not start the server: {}.", sentence(detail))
}

pub(crate) fn stop_refused(detail: &str) -> String {
    format!(
        "Azure refused to stop the VM ({}); it may still be running and billing. Look in the Azure portal, then /stop again.",
        sentence(detail)
    )
}

pub(crate) fn kept_refusing(detail: &str) -> String {
    format!("Azure kept answering \"not now\" ({})", sentence(detail))
}

pub(crate) fn waiting_for_azure(detail: &str, delay_ms: u64) -> String {
    format!(
        "⏳ Azure asked us to wait ({}); trying again in {}…",
        code_of(detail),
        duration(delay_ms)
    )
}

pub(crate) fn no_capacity(
    tried: Option<&str>,
    region: Option<&str>,
    detail: &str,
    next: &str,
) -> String {
    format!(
        "⏳ Azure has no spot {}{} right now ({}); trying a spot {}…",
        tried.map_or("VM".to_owned(), short_size),
        region.map(|r| format!(" in {r}")).unwrap_or_default(),
        code_of(detail),
        short_size(next)
    )
}

pub(crate) fn no_capacity_anywhere(
    sizes: &[String],
    tried: Option<&str>,
    region: Option<&str>,
) -> String {
    let sizes: Vec<String> = if sizes.is_empty() {
        tried.into_iter().map(short_size).collect()
    } else {
        sizes.iter().map(|s| short_size(s)).collect()
    };
    let which = if sizes.is_empty() {
        "the VM size".to_owned()
    } else {
        sizes.join(", ")
    };
    format!(
        "Azure has no spot capacity for {which}{} right now. Try again later, or add VM sizes to vm_sizes.",
        region.map(|r| format!(" in {r}")).unwrap_or_default()
    )
}

/// Why a start that was not ready in time is given up: what was seen last.
pub(crate) fn start_timed_out(state: &ServerState) -> String {
    let limit = duration(state.settings.start_timeout_ms);
    let seen = match state.status {
        Status::Booting => {
            let heard = if state.last_heard_ms == 0 {
                "the agent never reported".to_owned()
            } else {
                format!(
                    "the agent last reported {} ago",
                    duration(state.now_ms.saturating_sub(state.last_heard_ms))
                )
            };
            format!(
                "the VM came up{} but the game never said it was ready ({heard})",
                state
                    .public_ip
                    .as_deref()
                    .map(|ip| format!(" at {ip}"))
                    .unwrap_or_default()
            )
        }
        _ => match state
            .operation
            .as_ref()
            .and_then(|o| o.last_problem.as_deref())
        {
            Some(problem) => format!(
                "Azure had not made the VM yet (it said {})",
                code_of(problem)
            ),
            None => "Azure had not made the VM yet".to_owned(),
        },
    };
    format!("The server was not ready within {limit}: {seen}.")
}

pub(crate) fn idle_warning(idle_for_ms: u64, left_ms: u64) -> String {
    format!(
        "⚠️ Nobody has been online for {}; the server stops in {} unless someone joins.",
        duration(idle_for_ms),
        duration(left_ms)
    )
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
            "⚠️ Azure will restart the VM for maintenance ({when}); saving the world first…"
        ),
    }
}

pub(crate) fn restarting() -> String {
    "ℹ️ The world is saved; Azure is restarting the VM and the game will be back shortly.".into()
}

pub(crate) fn lost(reason: LostReason, state: &ServerState) -> String {
    match reason {
        LostReason::Vanished => format!(
            "⚠️ The VM is gone without notice (Azure may have reclaimed it); the world may have lost up to {}. Making sure nothing bills…",
            at_risk(state)
        ),
        LostReason::Silent => format!(
            "⚠️ No word from the VM for {}; stopping it so that it does not bill.",
            duration(state.settings.silence_timeout_ms)
        ),
        LostReason::GameEnded => "⚠️ The game stopped on the VM; stopping the server.".into(),
    }
}

pub(crate) fn joined(character: &str, online: usize, stays_up: bool) -> String {
    let stays = if stays_up {
        "; the server stays up"
    } else {
        ""
    };
    format!("⚔️ {character} joined ({online} online){stays}")
}

pub(crate) fn left(character: &str, online: usize) -> String {
    format!("👋 {character} left ({online} online)")
}

/// The crossplay join code, once the game has one (after "ready"), or a new one.
pub(crate) fn join_code(code: &str, changed: bool) -> String {
    if changed {
        format!("ℹ️ New crossplay join code: {code} (the old one no longer works).")
    } else {
        format!("ℹ️ Crossplay join code: {code}")
    }
}

pub(crate) fn already(state: &ServerState) -> String {
    match state.status {
        Status::Starting | Status::Booting => format!("ℹ️ Already starting: {}", status(state)),
        _ => format!("ℹ️ Nothing to do: {}", status(state)),
    }
}

/// Where the server stands, in a sentence without emoji (for a second /start or /stop, and
/// under the title of /status).
pub(crate) fn status(state: &ServerState) -> String {
    let since = |at: u64| duration(state.now_ms.saturating_sub(at));
    match state.status {
        Status::Stopped => "The server is stopped; nothing is billed. Use /start to play.".into(),
        Status::Failed => format!(
            "{} Use /start to try again.",
            state
                .failure
                .as_deref()
                .unwrap_or("The last start or stop failed.")
        ),
        Status::Starting => {
            let mut text = format!(
                "{} in, waiting for Azure to make the VM",
                since(state.start_began_ms)
            );
            if let Some(size) = &state.size {
                text.push_str(&format!(" (a spot {})", short_size(size)));
            }
            if let Some(problem) = state
                .operation
                .as_ref()
                .and_then(|o| o.last_problem.as_deref())
            {
                text.push_str(&format!("; Azure asked us to wait ({})", code_of(problem)));
            }
            text + "."
        }
        Status::Booting => format!(
            "{} in, the VM is up{}; the game is loading the world.",
            since(state.start_began_ms),
            state
                .public_ip
                .as_deref()
                .map(|ip| format!(" at {ip}"))
                .unwrap_or_default()
        ),
        Status::Running => format!(
            "The server is running at {}, {}.",
            address(state),
            online(state)
        ),
        Status::Stopping => format!("The server is stopping: {}.", stop_phase(state)),
    }
}

/// "nobody online", "2 online: Ada, Freya".
fn online(state: &ServerState) -> String {
    if state.players.is_empty() {
        "nobody online".to_owned()
    } else {
        format!(
            "{} online: {}",
            state.players.len(),
            state.players.join(", ")
        )
    }
}

/// Where a stop stands, for /status and a second /stop.
pub(crate) fn stop_phase(state: &ServerState) -> String {
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

/// "40 s", "3 min", "1 h 5 min", "3 days": how long things take, as read in Discord.
pub(crate) fn duration(ms: u64) -> String {
    const MINUTE: u64 = 60_000;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    match ms {
        _ if ms < 2 * MINUTE => format!("{} s", ms.div_ceil(1000)),
        _ if ms < 2 * HOUR => format!("{} min", ms / MINUTE),
        _ if ms < 2 * DAY => format!("{} h {} min", ms / HOUR, ms % HOUR / MINUTE),
        _ => format!("{} days", ms / DAY),
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

/// `Standard_D2as_v4` → `D2as_v4`: the part players recognise.
pub(crate) fn short_size(size: &str) -> String {
    size.strip_prefix("Standard_").unwrap_or(size).to_owned()
}

/// The code of a `code: message` detail, for short messages.
fn code_of(detail: &str) -> &str {
    detail
        .split_once(": ")
        .map_or(detail, |(code, _)| code)
        .trim()
}

/// A detail without its closing full stop, to end a sentence of ours.
fn sentence(detail: &str) -> &str {
    detail.trim().trim_end_matches('.')
}

pub(crate) fn address(state: &ServerState) -> String {
    format!(
        "{}:{}",
        state.public_ip.as_deref().unwrap_or("?"),
        state.settings.game_port
    )
}
