//! `heimdall-sandbox`: the README's main job. Starts the whole loop on loopback, plays one
//! scenario as a Discord evening, prints the conversation as a player sees it and a summary,
//! and stops everything.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use heimdall_sandbox::app_host::HostChoice;
use heimdall_sandbox::scenario::{capacity, evening, eviction, idle};
use heimdall_sandbox::transcript::Transcript;
use heimdall_sandbox::{Options, Sandbox};

/// Plays a Heimdall evening on this machine: Azurite, the real components on Spin (or on the
/// local Spin host where Spin is not installed), fakes of Discord, Entra, Azure Resource Manager
/// and the VM's metadata service, and the real agent on a simulated VM.
#[derive(Parser)]
#[command(name = "heimdall-sandbox", version)]
struct Cli {
    /// Which evening to play.
    #[arg(value_enum, default_value = "evening")]
    scenario: Scenario,
    /// What runs the components: real Spin (`spin build` + `spin up`, from `HEIMDALL_SPIN` or
    /// `PATH`), the local host, or Spin when it is installed and the local host otherwise.
    #[arg(long, value_enum, default_value = "auto", env = "HEIMDALL_HOST")]
    host: HostChoice,
}

#[derive(ValueEnum, Clone, Copy)]
enum Scenario {
    /// /start, a player joins and leaves, /status, /stop (which saves the world first).
    Evening,
    /// Azure evicts the spot VM with a player on it; the world is saved; /start again.
    Eviction,
    /// The last player leaves; the server warns, then saves and stops itself.
    Idle,
    /// No spot capacity for the first VM size: the next size runs.
    Capacity,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The components' log lines go to a file, as `spin up` keeps them, so that the
    // conversation stays readable; the summary says where.
    let component_log = heimdall_sandbox::cache_dir().join("play/components.log");
    let _ = std::fs::remove_file(&component_log);
    let host = cli.host.kind()?;
    let options = Options {
        component_log: Some(component_log.clone()),
        host: host.clone(),
        ..match cli.scenario {
            Scenario::Idle => idle::options(),
            _ => Options::default(),
        }
    };
    eprintln!(
        "Starting Azurite, the fakes, and the components on {}…",
        host.describe()
    );
    let sandbox = Sandbox::start(options).await?;
    let played = play(cli.scenario, &sandbox).await;
    let statuses = sandbox.statuses.sequence();
    let patches: Vec<String> = sandbox
        .arm
        .patches()
        .into_iter()
        .map(|p| match p.size {
            Some(size) => format!("{} {size}", p.capacity),
            None => p.capacity.to_string(),
        })
        .collect();
    sandbox.shutdown().await;
    let (transcript, summary) = played?;
    println!("\n── #valheim ─────────────────────────────────────────────────────────");
    print!("{transcript}");
    println!("──────────────────────────────────────────────────────────────────────");
    for line in summary {
        println!("{line}");
    }
    println!("Server status in the table: {}", statuses.join(" → "));
    println!(
        "Scale set PATCHes (capacity, and size when it changed): [{}]",
        patches.join(", ")
    );
    println!("Components ran on {}", host.describe());
    println!(
        "Component logs: {} (grep an event id, e.g. cmd-<interaction id>, to follow it)",
        component_log.display()
    );
    Ok(())
}

async fn play(scenario: Scenario, sandbox: &Sandbox) -> anyhow::Result<(Transcript, Vec<String>)> {
    let ms = |d: Duration| d.as_millis();
    Ok(match scenario {
        Scenario::Evening => {
            let outcome = evening::play(sandbox).await?;
            let latencies: Vec<u128> = outcome.event_latencies.iter().map(|d| ms(*d)).collect();
            let summary = vec![
                format!("Forged requests: {:?}", outcome.forged),
                format!("Game log line → Discord message (ms): {latencies:?}"),
                format!(
                    "/stop → capacity 0, the world saved first: {} ms",
                    ms(outcome.stop_to_capacity_zero)
                ),
                format!(
                    "Entra tokens from /start to ready: {}",
                    outcome.tokens_for_start
                ),
            ];
            (outcome.transcript, summary)
        }
        Scenario::Eviction => {
            let outcome = eviction::play(sandbox).await?;
            let summary = vec![
                format!(
                    "Eviction notice ({} s ahead) → approved by the agent after the save: {} ms",
                    eviction::NOTICE.as_secs(),
                    ms(outcome.notice_to_approval)
                ),
                format!(
                    "Eviction notice → \"Azure took the spot VM\" in Discord: {} ms",
                    ms(outcome.notice_to_announced)
                ),
            ];
            (outcome.transcript, summary)
        }
        Scenario::Idle => {
            let outcome = idle::play(sandbox).await?;
            let summary = vec![format!(
                "Idle time {} s: last player left → warning {} ms, → server stopped {} ms",
                idle::options().idle.as_secs(),
                ms(outcome.left_to_warning),
                ms(outcome.left_to_stopped)
            )];
            (outcome.transcript, summary)
        }
        Scenario::Capacity => (capacity::play(sandbox).await?, Vec::new()),
    })
}
