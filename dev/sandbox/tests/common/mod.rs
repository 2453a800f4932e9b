//! What the end-to-end test files share.
#![allow(dead_code)] // each test file uses its own part

use std::time::Instant;

use heimdall_fakes::{DiscordMessage, MessageKind};
use heimdall_sandbox::app_host::HostKind;
use heimdall_sandbox::spin::Spin;
use heimdall_sandbox::{Options, Sandbox};

/// Declares each named `async fn(HostKind)` as two tests: `local::<name>` on the local host,
/// always, and `spin::<name>` on real Spin, which passes at once where Spin is not installed
/// (`scripts/test` says which Spin it found; see [`spin`]).
macro_rules! on_every_host {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(heimdall_sandbox::app_host::HostKind::Local).await
                }
            )*
        }
        mod spin {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(host) = crate::common::spin() {
                        super::$name(host).await
                    }
                }
            )*
        }
    };
}

/// Real Spin, when it is installed (`HEIMDALL_SPIN` or `PATH`); `None`, with a note on stderr,
/// when it is not.
pub fn spin() -> Option<HostKind> {
    match Spin::find().expect("HEIMDALL_SPIN names a Spin CLI") {
        Some(spin) => Some(HostKind::Spin(spin)),
        None => {
            eprintln!("Spin is not installed (no spin on PATH, HEIMDALL_SPIN unset): skipped");
            None
        }
    }
}

pub const IP: &str = "203.0.113.10";

/// (channel message?, text) of every message the app sent to Discord, in order.
pub fn said(messages: &[DiscordMessage]) -> Vec<(bool, String)> {
    messages
        .iter()
        .map(|m| {
            (
                matches!(m.kind, MessageKind::ChannelMessage { .. }),
                m.content.clone(),
            )
        })
        .collect()
}

/// The texts alone, in order.
pub fn texts(messages: &[DiscordMessage]) -> Vec<String> {
    messages.iter().map(|m| m.content.clone()).collect()
}

pub fn first_at(messages: &[DiscordMessage], text: &str) -> Instant {
    messages
        .iter()
        .find(|m| m.content.contains(text))
        .unwrap_or_else(|| panic!("no message with {text:?}"))
        .at
}

/// Runs `scenario` on a fresh sandbox on `host` and shuts it down whatever happens.
pub async fn with_sandbox<T>(
    host: HostKind,
    options: Options,
    scenario: impl AsyncFnOnce(&Sandbox) -> anyhow::Result<T>,
) -> T {
    let options = Options { host, ..options };
    let sandbox = Sandbox::start(options).await.expect("the sandbox starts");
    let result = scenario(&sandbox).await;
    sandbox.shutdown().await;
    result.expect("the scenario plays through")
}

/// What the default evening says in Discord, in order (false = reply edit, true = channel).
pub fn evening_said() -> Vec<(bool, String)> {
    vec![
        (
            false,
            "⏳ Starting the server for Ada… asking Azure for a VM.".into(),
        ),
        (false, format!("⏳ VM up at {IP}, loading the world…")),
        (
            false,
            format!("✅ Server is ready! Join at {IP}:2456 (world Vanaheim)"),
        ),
        (true, "⚔️ Freya Stormborn joined (1 online)".into()),
        (true, "👋 Freya Stormborn left (0 online)".into()),
        (
            false,
            "⏳ Stopping the server for Ada… saving the world first.".into(),
        ),
        (false, "💾 World saved (14 ms).".into()),
        (
            false,
            "💤 Server stopped; nothing is billed until the next /start.".into(),
        ),
    ]
}
