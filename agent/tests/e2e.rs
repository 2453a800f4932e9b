//! The agent in process against a loopback HTTP server standing in for the queue, the kick route
//! and the instance metadata service.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{eventually, Recorded, Server, TempDir};
use heimdall_agent::{run, AgentConfig, LogSource, QueueAuth, Spool};
use heimdall_events::{Envelope, EventBody, GameEvent, VmUp};
use heimdall_valheim_log::LogParser;

const SESSION: &str = include_str!("../../crates/valheim-log/fixtures/valheim-session.log");
const CROSSPLAY: &str = include_str!("../../crates/valheim-log/fixtures/valheim-crossplay.log");
/// Azurite's published development key (not a secret).
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const APP_SECRET: &str = "test-app-secret";
const QUEUE_PATH: &str = "/devstoreaccount1/events/messages";
const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
/// IMDS's answer from the contract; its `access_token` is replaced per test.
const TOKEN_RESPONSE: &str = include_str!(
    "../../../shared/contracts/examples/entra/imds-managed-identity-token-response.json"
);
const WAIT: Duration = Duration::from_secs(20);

fn config(server: &Server, log: &Path, spool: &Path) -> AgentConfig {
    AgentConfig {
        server_id: "vanaheim".into(),
        queue_endpoint: server.origin.clone(),
        queue_name: "events".into(),
        storage_account: "devstoreaccount1".into(),
        queue_auth: QueueAuth::SharedKey {
            key: DEV_KEY.into(),
        },
        kick_url: Some(format!("{}/reactions/kick", server.origin)),
        app_secret: APP_SECRET.into(),
        log_source: LogSource::File {
            path: log.to_owned(),
            from_start: true,
        },
        public_ip: None,
        vm_name: None,
        imds_endpoint: server.origin.clone(),
        spool_dir: spool.to_owned(),
    }
}

/// Answers like Azure would: 201 for a put, 200 for the kick, text for IMDS.
fn azure_like(request: &Recorded) -> (u16, String) {
    match request.path() {
        QUEUE_PATH => (201, String::new()),
        "/reactions/kick" => (200, String::new()),
        "/metadata/instance/compute/name" => (200, "vmss-heimdall_0".into()),
        path if path.ends_with("/publicIpAddress") => (200, "20.103.7.88".into()),
        _ => (404, String::new()),
    }
}

struct Running {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<anyhow::Result<()>>,
}

fn start(config: AgentConfig) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = thread::spawn({
        let stop = stop.clone();
        move || run(config, stop)
    });
    Running { stop, thread }
}

impl Running {
    /// Stops the agent and checks that it notices quickly.
    fn stop(self) {
        let asked = Instant::now();
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .expect("agent thread")
            .expect("agent result");
        assert!(asked.elapsed() < Duration::from_secs(2), "slow to stop");
    }
}

/// The envelope inside a Put Message body: XML around Base64 of the JSON.
fn envelope_of(request: &Recorded) -> Envelope {
    let body = String::from_utf8_lossy(&request.body);
    let text = body
        .split_once("<MessageText>")
        .and_then(|(_, rest)| rest.split_once("</MessageText>"))
        .map(|(text, _)| text)
        .expect("a QueueMessage body");
    let json = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("Base64 message text");
    Envelope::from_json(&json).expect("an envelope")
}

fn game_events(requests: &[Recorded]) -> Vec<GameEvent> {
    requests
        .iter()
        .map(|r| match envelope_of(r).body {
            EventBody::Game(event) => event,
            other => panic!("not a game event: {other:?}"),
        })
        .collect()
}

fn parsed(log: &str) -> Vec<GameEvent> {
    let mut parser = LogParser::new();
    log.lines().flat_map(|line| parser.line(line)).collect()
}

fn vm_up() -> GameEvent {
    GameEvent::VmUp(VmUp {
        vm_name: "vmss-heimdall_0".into(),
        public_ip: "20.103.7.88".into(),
    })
}

#[test]
fn follows_the_log_and_sends_signed_events_then_kicks() {
    let (_dir, log, spool) = session_files("e2e");
    let server = Server::start(azure_like);
    let agent = start(config(&server, &log, &spool));

    let mut expected = vec![vm_up()];
    expected.extend(parsed(SESSION));
    assert_eq!(expected.len(), 9);
    assert!(eventually(WAIT, || server.requests_to(QUEUE_PATH).len()
        >= expected.len()));

    // Lines written while it runs are followed too.
    let mut file = OpenOptions::new().append(true).open(&log).expect("open");
    file.write_all(CROSSPLAY.as_bytes()).expect("append");
    let mut continued = LogParser::new();
    expected.extend(
        SESSION
            .lines()
            .chain(CROSSPLAY.lines())
            .flat_map(|line| continued.line(line))
            .skip(8),
    );
    assert_eq!(expected.len(), 13);
    assert!(eventually(WAIT, || server.requests_to(QUEUE_PATH).len()
        >= expected.len()));
    assert!(eventually(WAIT, || {
        let requests = server.requests();
        requests
            .last()
            .is_some_and(|r| r.path() == "/reactions/kick")
    }));
    agent.stop();

    let puts = server.requests_to(QUEUE_PATH);
    assert_eq!(game_events(&puts), expected);
    let mut ids = std::collections::HashSet::new();
    for put in &puts {
        assert_eq!(put.method, "POST");
        let auth = put.header("authorization").expect("signed");
        assert!(auth.starts_with("SharedKey devstoreaccount1:"), "{auth}");
        assert!(put.header("x-ms-date").is_some());
        let envelope = envelope_of(put);
        assert_eq!(envelope.server, "vanaheim");
        assert_eq!(envelope.id.len(), 32);
        assert!(ids.insert(envelope.id));
    }
    let kicks = server.requests_to("/reactions/kick");
    assert!(!kicks.is_empty());
    for kick in &kicks {
        assert_eq!(kick.method, "POST");
        assert_eq!(
            kick.header("authorization"),
            Some(format!("Bearer {APP_SECRET}").as_str())
        );
    }
    let imds = server.requests_to("/metadata/instance/compute/name");
    assert_eq!(imds[0].header("metadata"), Some("true"));
    let spooled = Spool::open(&spool).expect("spool").pending().expect("list");
    assert!(spooled.is_empty(), "left in the spool: {spooled:?}");
}

#[test]
fn spooled_events_survive_an_outage_and_a_restart_in_order() {
    let (_dir, log, spool) = session_files("restart");

    // First run: the queue answers 503 to everything.
    let refused = Arc::new(AtomicUsize::new(0));
    let down = Server::start({
        let refused = refused.clone();
        move |request| match request.path() {
            QUEUE_PATH => {
                refused.fetch_add(1, Ordering::Relaxed);
                (503, "<Error><Code>ServerBusy</Code></Error>".into())
            }
            _ => azure_like(request),
        }
    });
    let agent = start(config(&down, &log, &spool));
    let spooled = Spool::open(&spool).expect("spool");
    assert!(eventually(WAIT, || spooled.pending().expect("list").len() == 9));
    assert!(eventually(WAIT, || refused.load(Ordering::Relaxed) >= 2));
    agent.stop();
    let left = spooled.pending().expect("list").len();
    assert_eq!(left, 9);

    // Restart with a queue that works, a log with nothing new, and a new VmUp.
    let up = Server::start(azure_like);
    let mut second = config(&up, &log, &spool);
    second.log_source = LogSource::File {
        path: log.clone(),
        from_start: false,
    };
    second.public_ip = Some("20.0.0.2".into());
    second.vm_name = Some("vmss-heimdall_1".into());
    let agent = start(second);
    assert!(eventually(WAIT, || up.requests_to(QUEUE_PATH).len() >= 10));
    agent.stop();

    let mut expected = vec![vm_up()];
    expected.extend(parsed(SESSION));
    expected.push(GameEvent::VmUp(VmUp {
        vm_name: "vmss-heimdall_1".into(),
        public_ip: "20.0.0.2".into(),
    }));
    assert_eq!(game_events(&up.requests_to(QUEUE_PATH)), expected);
    assert!(spooled.pending().expect("list").is_empty());
}

/// A fresh folder with the recorded session as the game log, and where the spool goes.
fn session_files(name: &str) -> (TempDir, PathBuf, PathBuf) {
    let dir = TempDir::new(name);
    let log = dir.path().join("valheim.log");
    fs::write(&log, SESSION).expect("write log");
    let spool = dir.path().join("spool");
    (dir, log, spool)
}

/// The contract's IMDS answer carrying `token` (its numbers are strings, as IMDS writes them).
fn token_response(token: &str) -> String {
    TOKEN_RESPONSE.replace("eyJ0eXAi...", token)
}

/// Whether the request asks IMDS for a storage token the way IMDS wants to be asked.
fn is_storage_token_request(request: &Recorded) -> bool {
    let query = request.target.split_once('?').map_or("", |(_, q)| q);
    let decoded = query.replace("%3A", ":").replace("%2F", "/");
    request.method == "GET"
        && request.header("metadata") == Some("true")
        && decoded.split('&').any(|p| p == "api-version=2018-02-01")
        && decoded
            .split('&')
            .any(|p| p == "resource=https://storage.azure.com/")
}

#[test]
fn managed_identity_tokens_from_imds_authorize_the_puts() {
    let (_dir, log, spool) = session_files("managed-identity");

    // IMDS is updating at first (410), then gives "token-1", which the queue no longer accepts
    // (401, as for a revoked token), then "token-2", which it does.
    let token_calls = Arc::new(AtomicUsize::new(0));
    let server = Server::start({
        let token_calls = token_calls.clone();
        move |request| match request.path() {
            TOKEN_PATH if !is_storage_token_request(request) => (400, "{}".into()),
            TOKEN_PATH => match token_calls.fetch_add(1, Ordering::SeqCst) {
                0 => (410, "{\"error\":\"unavailable\"}".into()),
                1 => (200, token_response("token-1")),
                _ => (200, token_response("token-2")),
            },
            QUEUE_PATH if request.header("authorization") != Some("Bearer token-2") => (
                401,
                "<Error><Code>InvalidAuthenticationInfo</Code></Error>".into(),
            ),
            _ => azure_like(request),
        }
    });
    let mut config = config(&server, &log, &spool);
    config.queue_auth = QueueAuth::ManagedIdentity;
    let agent = start(config);

    let mut expected = vec![vm_up()];
    expected.extend(parsed(SESSION));
    let accepted = || {
        server
            .requests_to(QUEUE_PATH)
            .into_iter()
            .filter(|r| r.header("authorization") == Some("Bearer token-2"))
            .collect::<Vec<_>>()
    };
    assert!(eventually(WAIT, || accepted().len() >= expected.len()));
    agent.stop();

    let puts = accepted();
    assert_eq!(game_events(&puts), expected);
    for put in &puts {
        // Entra tokens need x-ms-version 2017-11-09 or later (ISO dates compare as text).
        let version = put.header("x-ms-version").expect("x-ms-version");
        assert!(version >= "2017-11-09", "{version}");
        assert!(put.header("x-ms-date").is_some());
    }
    // One refused put with token-1, then the new token; kept for all the rest.
    let refused = server.requests_to(QUEUE_PATH).len() - puts.len();
    assert_eq!(refused, 1);
    let token_requests = server.requests_to(TOKEN_PATH);
    assert_eq!(token_requests.len(), 3);
    assert!(token_requests.iter().all(is_storage_token_request));
    let spooled = Spool::open(&spool).expect("spool").pending().expect("list");
    assert!(spooled.is_empty(), "left in the spool: {spooled:?}");
}
