//! `heimdall-bench`: the interactions budgets of DESIGN.md, measured through the local host with
//! the real component and Azurite on loopback. Each request gets a fresh component instance.
//!
//! Run with `scripts/bench`. Prints p50/p99 of one-at-a-time requests, then throughput with
//! 50 requests in flight. Client-side times include the loopback HTTP round trip; host-side
//! times are the host's own measure, from its one log line per request (request in → response
//! ready: routing, a fresh instance, the guest's work up to its answer).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heimdall_sandbox::client::HttpClient;
use heimdall_sandbox::player::Forgery;
use heimdall_sandbox::{Options, Sandbox};

const SEQUENTIAL: usize = 2_000;
const CONCURRENT: usize = 10_000;
const IN_FLIGHT: usize = 50;

/// Collects the host-side time of every `/interactions` request from the host's log line
/// (`METHOD path component status <N>us`).
struct HostTimes(Mutex<Vec<Duration>>);

static HOST_TIMES: HostTimes = HostTimes(Mutex::new(Vec::new()));

impl log::Log for HostTimes {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Info && metadata.target().starts_with("heimdall_spin_host")
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = record.args().to_string();
        let mut words = line.split(' ');
        if words.nth(1) != Some("/interactions") {
            return;
        }
        let micros = line.rsplit(' ').next().and_then(|w| w.strip_suffix("us"));
        if let Some(micros) = micros.and_then(|m| m.parse().ok()) {
            self.0
                .lock()
                .expect("not poisoned")
                .push(Duration::from_micros(micros));
        }
    }

    fn flush(&self) {}
}

/// The host-side times collected since the last call.
fn host_times() -> Vec<Duration> {
    std::mem::take(&mut *HOST_TIMES.0.lock().expect("not poisoned"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    log::set_logger(&HOST_TIMES).map_err(|e| anyhow::anyhow!("{e}"))?;
    log::set_max_level(log::LevelFilter::Info);
    // No scheduled tick during the measurement: it would only add noise.
    let options = Options {
        tick_every: Duration::from_secs(3600),
        ..Options::default()
    };
    let sandbox = Sandbox::start(options).await?;
    let result = run(&sandbox).await;
    sandbox.shutdown().await;
    result
}

async fn run(sandbox: &Sandbox) -> anyhow::Result<()> {
    let player = &sandbox.player;
    let ping = || player.signed(br#"{"type":1}"#.to_vec(), Forgery::None);
    let start = || {
        player.signed(
            player.prepare("start", "Bench").body.into_bytes(),
            Forgery::None,
        )
    };

    // PINGs first: each /start also wakes reactions, whose work would share the cores.
    host_times();
    report("PING, one at a time", &sequential(SEQUENTIAL, ping).await?);
    report("PING, one at a time, host-side", &host_times());
    let rate = concurrent((0..CONCURRENT).map(|_| ping()).collect::<Result<_, _>>()?).await?;
    println!("PING with {IN_FLIGHT} in flight: {rate:.0} requests/s");
    host_times();
    report(
        "/start, one at a time",
        &sequential(SEQUENTIAL / 4, start).await?,
    );
    report("/start, one at a time, host-side", &host_times());
    let rate = concurrent(
        (0..CONCURRENT / 5)
            .map(|_| start())
            .collect::<Result<_, _>>()?,
    )
    .await?;
    println!("/start with {IN_FLIGHT} in flight: {rate:.0} requests/s");
    Ok(())
}

async fn sequential(
    count: usize,
    build: impl Fn() -> anyhow::Result<http::Request<Vec<u8>>>,
) -> anyhow::Result<Vec<Duration>> {
    let http = HttpClient::default();
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let request = build()?;
        let began = Instant::now();
        let response = http.send(request).await?;
        times.push(began.elapsed());
        anyhow::ensure!(response.status() == 200, "answered {}", response.status());
    }
    Ok(times)
}

/// Requests per second with `IN_FLIGHT` requests outstanding at all times.
async fn concurrent(requests: Vec<http::Request<Vec<u8>>>) -> anyhow::Result<f64> {
    let total = requests.len();
    let queue = Arc::new(std::sync::Mutex::new(requests));
    let began = Instant::now();
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let http = HttpClient::default();
                loop {
                    let Some(request) = queue.lock().expect("not poisoned").pop() else {
                        return Ok::<_, anyhow::Error>(());
                    };
                    let response = http.send(request).await?;
                    anyhow::ensure!(response.status() == 200, "answered {}", response.status());
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    Ok(total as f64 / began.elapsed().as_secs_f64())
}

fn report(what: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    println!(
        "{what}: n={} p50={:.2} ms p99={:.2} ms",
        sorted.len(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
}
