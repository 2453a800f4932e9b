//! What players read in Discord. One place, so the wording stays consistent.

use crate::{ServerState, Status};

pub(crate) fn starting(who: &str) -> String {
    format!("⏳ Starting the server for {who}… asking Azure for a VM.")
}

pub(crate) fn stopping(who: &str) -> String {
    format!("🛑 Stopping the server for {who}…")
}

pub(crate) fn vm_up(state: &ServerState) -> String {
    format!(
        "🖥️ VM up at {}, loading world…",
        state.public_ip.as_deref().unwrap_or("?")
    )
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

pub(crate) fn stopped() -> String {
    "💤 Server stopped; nothing is billed until the next /start.".into()
}

pub(crate) fn scale_failed(capacity: u32, message: &str) -> String {
    let action = if capacity > 0 { "start" } else { "stop" };
    format!("❌ Could not {action} the server: {message}")
}

pub(crate) fn joined(character: &str, online: usize) -> String {
    format!("⚔️ {character} joined ({online} online)")
}

pub(crate) fn left(character: &str, online: usize) -> String {
    format!("👋 {character} left ({online} online)")
}

pub(crate) fn eviction() -> &'static str {
    "⚠️ Azure is reclaiming the spot VM; saving the world…"
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
        Status::Stopping => "The server is stopping.".into(),
    }
}

fn address(state: &ServerState) -> String {
    format!(
        "{}:{}",
        state.public_ip.as_deref().unwrap_or("?"),
        state.game_port
    )
}
