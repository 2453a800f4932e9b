//! `heimdall-bench`: the interactions budgets of DESIGN.md, measured through the local host with
//! the real component and Azurite on loopback. Each request gets a fresh component instance.
//!
//! Run with `scripts/bench`. Prints p50/p99 of one-at-a-time requests, then throughput with
//! 50 requests in flight, each both on new connections (`Connection: close`) and on reused
//! keep-alive connections, which Discord's ingress may use. Client-side times include the
//! loopback HTTP round trip; host-side times are the host's own measure, from its one log line
//! per request (request in → response ready: routing, a fresh instance, the guest's work up to
//! its answer), split into instantiation and the rest.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use heimdall_sandbox::app_host::HostChoice;
use heimdall_sandbox::client::HttpClient;
use heimdall_sandbox::player::Forgery;
use heimdall_sandbox::{Options, Sandbox};

const IN_FLIGHT: usize = 50;

/// Measures the interactions budgets of DESIGN.md through the local host, with the real
/// component and Azurite on loopback.
#[derive(Parser)]
#[command(name = "heimdall-bench")]
struct Args {
    /// Which requests to measure.
    #[arg(long, value_enum, default_value = "all", env = "HEIMDALL_BENCH_ONLY")]
    only: Only,
    /// PINGs sent one at a time, per kind of connection; a quarter as many /start. The
    /// throughput runs send five times as many.
    #[arg(long, default_value_t = 2_000, env = "HEIMDALL_BENCH_REQUESTS")]
    requests: usize,
    /// What runs the component: the local host (DESIGN's budgets are measured there, with its
    /// host-side times) or real Spin (`HEIMDALL_SPIN` or `PATH`; client-side times only).
    #[arg(long, value_enum, default_value = "local", env = "HEIMDALL_HOST")]
    host: HostChoice,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Only {
    All,
    Ping,
    Start,
}

/// One host-side measure: the whole request, and the fresh instance's creation within it.
#[derive(Clone, Copy)]
struct HostTime {
    total: Duration,
    instantiate: Duration,
}

/// Collects the host-side times of every `/interactions` request from the host's log line
/// (`METHOD path component status <N>us instantiate=<M>us`), and shows its warnings and errors.
struct HostTimes(Mutex<Vec<HostTime>>);

static HOST_TIMES: HostTimes = HostTimes(Mutex::new(Vec::new()));

impl log::Log for HostTimes {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Info && metadata.target().starts_with("heimdall_spin_host")
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // A failure inside the host (no instance to be had, say) must not pass unseen.
        if record.level() <= log::Level::Warn {
            eprintln!("host {}: {}", record.level(), record.args());
        }
        if let Some(time) = parse_host_line(&record.args().to_string()) {
            self.0.lock().expect("not poisoned").push(time);
        }
    }

    fn flush(&self) {}
}

fn parse_host_line(line: &str) -> Option<HostTime> {
    let words: Vec<&str> = line.split(' ').collect();
    if words.get(1) != Some(&"/interactions") {
        return None;
    }
    let micros = |word: &str| {
        word.strip_suffix("us")?
            .parse()
            .ok()
            .map(Duration::from_micros)
    };
    Some(HostTime {
        total: micros(words.get(4)?)?,
        instantiate: micros(words.get(5)?.strip_prefix("instantiate=")?)?,
    })
}

/// The host-side times collected since the last call.
fn host_times() -> Vec<HostTime> {
    std::mem::take(&mut *HOST_TIMES.0.lock().expect("not poisoned"))
}

/// How the client uses its connections.
#[derive(Clone, Copy)]
enum Connections {
    /// `Connection: close` on every request, so each one opens a new connection.
    New,
    /// Idle connections are reused (HTTP/1.1 keep-alive).
    KeepAlive,
}

impl Connections {
    fn name(self) -> &'static str {
        match self {
            Connections::New => "new connections",
            Connections::KeepAlive => "keep-alive",
        }
    }

    fn prepare(self, mut request: http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
        if let Connections::New = self {
            request.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        request
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    log::set_logger(&HOST_TIMES).map_err(|e| anyhow::anyhow!("{e}"))?;
    log::set_max_level(log::LevelFilter::Info);
    // No scheduled tick during the measurement: it would only add noise.
    // The components' log lines go to a file: thousands of requests would bury the results.
    let component_log = heimdall_sandbox::cache_dir().join("bench/components.log");
    let _ = std::fs::remove_file(&component_log);
    let host = args.host.kind()?;
    println!("Components on {}", host.describe());
    let options = Options {
        tick_every: Duration::from_secs(3600),
        component_log: Some(component_log),
        host,
        ..Options::default()
    };
    let sandbox = Sandbox::start(options).await?;
    let result = run(&sandbox, &args).await;
    sandbox.shutdown().await;
    result
}

async fn run(sandbox: &Sandbox, args: &Args) -> anyhow::Result<()> {
    let player = &sandbox.player;
    let ping = || player.signed(br#"{"type":1}"#.to_vec(), Forgery::None);
    let start = || {
        player.signed(
            player.prepare("start", "Bench").body.into_bytes(),
            Forgery::None,
        )
    };

    // PINGs first: each /start also wakes reactions, whose work would share the cores.
    if args.only != Only::Start {
        measure("PING", args.requests, ping).await?;
    }
    if args.only != Only::Ping {
        measure("/start", args.requests / 4, start).await?;
    }
    Ok(())
}

/// `count` requests one at a time, then five times as many with [`IN_FLIGHT`] in flight; each
/// on new connections and on keep-alive ones.
async fn measure(
    what: &str,
    count: usize,
    build: impl Fn() -> anyhow::Result<http::Request<Vec<u8>>>,
) -> anyhow::Result<()> {
    for connections in [Connections::New, Connections::KeepAlive] {
        let what = format!("{what}, one at a time, {}", connections.name());
        host_times();
        report(&what, &sequential(count, connections, &build).await?);
        report_host(&what, &host_times());
    }
    for connections in [Connections::New, Connections::KeepAlive] {
        let requests = (0..count * 5).map(|_| build()).collect::<Result<_, _>>()?;
        let rate = concurrent(requests, connections).await?;
        let name = connections.name();
        println!("{what} with {IN_FLIGHT} in flight, {name}: {rate:.0} requests/s");
    }
    Ok(())
}

async fn sequential(
    count: usize,
    connections: Connections,
    build: &impl Fn() -> anyhow::Result<http::Request<Vec<u8>>>,
) -> anyhow::Result<Vec<Duration>> {
    let http = HttpClient::default();
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let request = connections.prepare(build()?);
        let began = Instant::now();
        let response = http.send(request).await?;
        times.push(began.elapsed());
        anyhow::ensure!(response.status() == 200, "answered {}", response.status());
    }
    Ok(times)
}

/// Requests per second with `IN_FLIGHT` requests outstanding at all times.
async fn concurrent(
    requests: Vec<http::Request<Vec<u8>>>,
    connections: Connections,
) -> anyhow::Result<f64> {
    let total = requests.len();
    let requests: Vec<_> = requests
        .into_iter()
        .map(|r| connections.prepare(r))
        .collect();
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
    println!("{what}: n={} {}", times.len(), percentiles(times));
}

/// Host-side times, then their two parts: creating the instance, and the rest (routing and the
/// guest's work up to its answer).
fn report_host(what: &str, times: &[HostTime]) {
    if times.is_empty() {
        // Real Spin: its own times are not in this process.
        return;
    }
    let parts = |f: fn(&HostTime) -> Duration| times.iter().map(f).collect::<Vec<_>>();
    println!(
        "{what}, host-side: n={} {} (instantiate {}; rest {})",
        times.len(),
        percentiles(&parts(|t| t.total)),
        percentiles(&parts(|t| t.instantiate)),
        percentiles(&parts(|t| t.total.saturating_sub(t.instantiate))),
    );
}

fn percentiles(times: &[Duration]) -> String {
    if times.is_empty() {
        return "no samples".into();
    }
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    format!(
        "p50={:.2} ms p99={:.2} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    )
}
