//! The tick as `spin aka cron` sends it: a GET of a path and query, no header of ours. The app's
//! secret then travels as `?secret=`, and must never reach a log line.

use std::sync::Mutex;
use std::time::Duration;

use heimdall_sandbox::app_host::HostKind;
use heimdall_sandbox::client::HttpClient;
use heimdall_sandbox::{Options, Sandbox};

#[macro_use]
mod common;

on_every_host!(a_scheduler_without_headers_ticks_with_the_secret_in_the_query);

/// Every log line of the process (the local host logs one per request).
struct Lines(Mutex<Vec<String>>);

static LINES: Lines = Lines(Mutex::new(Vec::new()));

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let line = format!("{} {}", record.target(), record.args());
        self.0.lock().expect("not poisoned").push(line);
    }

    fn flush(&self) {}
}

async fn a_scheduler_without_headers_ticks_with_the_secret_in_the_query(host: HostKind) {
    static LOGGER: std::sync::Once = std::sync::Once::new();
    LOGGER.call_once(|| {
        log::set_logger(&LINES).expect("the only logger");
        log::set_max_level(log::LevelFilter::Debug);
    });
    let local = matches!(host, HostKind::Local);
    // Only the requests of this test tick.
    let options = Options {
        tick_every: Duration::from_secs(3600),
        host,
        ..Options::default()
    };
    let sandbox = Sandbox::start(options).await.expect("the sandbox starts");
    let secret = sandbox.app_secret.clone();
    let result = ticks(&sandbox).await;
    sandbox.shutdown().await;
    result.expect("the tick behaves");
    if !local {
        // Spin's own log lines are not in this process: the answers above are what is checked.
        return;
    }
    let lines = LINES.0.lock().expect("not poisoned");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("GET /reactions/tick reactions 200")),
        "the host logged the tick: {lines:#?}"
    );
    let leaks: Vec<_> = lines.iter().filter(|l| l.contains(&secret)).collect();
    assert!(leaks.is_empty(), "the secret is in the log: {leaks:#?}");
}

async fn ticks(sandbox: &Sandbox) -> anyhow::Result<()> {
    let http = HttpClient::default();
    let base = format!("http://{}", sandbox.host.addr());
    let secret = &sandbox.app_secret;
    let get = |path: String| http::Request::get(format!("{base}{path}")).body(Vec::new());
    let cases = [
        (get(format!("/reactions/tick?secret={secret}"))?, 200),
        (get(format!("/reactions/tick?secret={secret}x"))?, 401),
        (get("/reactions/tick".into())?, 401),
        (get(format!("/reactions/kick?secret={secret}"))?, 405),
        (
            http::Request::post(format!("{base}/reactions/kick?secret={secret}"))
                .body(Vec::new())?,
            200,
        ),
    ];
    for (request, expected) in cases {
        let shown = format!("{} {}", request.method(), request.uri().path());
        let response = http.send(request).await?;
        anyhow::ensure!(
            response.status() == expected,
            "{shown}: {} instead of {expected}: {}",
            response.status(),
            String::from_utf8_lossy(response.body())
        );
    }
    Ok(())
}
