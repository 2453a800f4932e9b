//! `heimdall-sandbox`: the README's main job. Starts the whole loop on loopback, plays one
//! scenario as a Discord evening, prints the conversation as a player sees it and a summary,
//! and stops everything.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use heimdall_sandbox::scenario::{evening, eviction};
use heimdall_sandbox::transcript::Transcript;
use heimdall_sandbox::{Options, Sandbox};

/// Plays a Heimdall evening on this machine: Azurite, the local Spin host with the real
/// components, fakes of Discord, Entra, Azure Resource Manager and the VM's metadata service,
/// and the real agent on a simulated VM.
#[derive(Parser)]
#[command(name = "heimdall-sandbox", version)]
struct Cli {
    /// Which evening to play.
    #[arg(value_enum, default_value = "evening")]
    scenario: Scenario,
}

#[derive(ValueEnum, Clone, Copy)]
enum Scenario {
    /// /start, a player joins and leaves, /status, /stop (which saves the world first).
    Evening,
    /// Azure evicts the spot VM with a player on it; the world is saved; /start again.
    Eviction,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    eprintln!("Starting Azurite, the fakes, the local Spin host and its components…");
    let sandbox = Sandbox::start(Options::default()).await?;
    let played = match cli.scenario {
        Scenario::Evening => evening::play(&sandbox).await.map(|outcome| {
            let latencies: Vec<u128> = outcome
                .event_latencies
                .iter()
                .map(Duration::as_millis)
                .collect();
            let summary = vec![
                format!("Forged requests: {:?}", outcome.forged),
                format!("Game log line → Discord message (ms): {latencies:?}"),
                format!(
                    "/stop → capacity 0, the world saved first: {} ms",
                    outcome.stop_to_capacity_zero.as_millis()
                ),
            ];
            (outcome.transcript, summary)
        }),
        Scenario::Eviction => eviction::play(&sandbox).await.map(|outcome| {
            let summary = vec![
                format!(
                    "Eviction notice ({} s ahead) → approved by the agent after the save: {} ms",
                    eviction::NOTICE.as_secs(),
                    outcome.notice_to_approval.as_millis()
                ),
                format!(
                    "Eviction notice → \"Azure took the spot VM\" in Discord: {} ms",
                    outcome.notice_to_announced.as_millis()
                ),
            ];
            (outcome.transcript, summary)
        }),
    };
    let statuses = sandbox.statuses.sequence();
    let patches = sandbox.arm.capacity_patches();
    sandbox.shutdown().await;
    let (transcript, summary) = played?;
    print_transcript(&transcript);
    for line in summary {
        println!("{line}");
    }
    println!("Server status in the table: {}", statuses.join(" → "));
    println!("Scale set capacity PATCHes: {patches:?}");
    Ok(())
}

fn print_transcript(transcript: &Transcript) {
    println!("\n── #valheim ─────────────────────────────────────────────────────────");
    print!("{transcript}");
    println!("──────────────────────────────────────────────────────────────────────");
}
