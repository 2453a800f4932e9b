//! `heimdall-sandbox`: the README's main job. Starts the whole loop on loopback, plays a short
//! Discord evening, prints the conversation as a player sees it, and stops everything.

use heimdall_sandbox::{session, Options, Sandbox};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    eprintln!("Starting Azurite, the fakes, the local Spin host and its components…");
    let sandbox = Sandbox::start(Options::default()).await?;
    let result = session::play(&sandbox).await;
    let statuses = sandbox.statuses.sequence();
    let patches = sandbox.arm.capacity_patches();
    sandbox.shutdown().await;
    let outcome = result?;
    println!("\n── #valheim ─────────────────────────────────────────────────────────");
    print!("{}", outcome.transcript);
    println!("──────────────────────────────────────────────────────────────────────");
    println!("Forged requests: {:?}", outcome.forged);
    println!("Server status in the table: {}", statuses.join(" → "));
    println!("Scale set capacity PATCHes: {patches:?}");
    let ms: Vec<u128> = outcome
        .event_latencies
        .iter()
        .map(|d| d.as_millis())
        .collect();
    println!("Game log line → Discord message (ms): {ms:?}");
    Ok(())
}
