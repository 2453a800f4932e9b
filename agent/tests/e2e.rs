//! The agent against a loopback HTTP server standing in for the queue, the kick route and the
//! instance metadata service: in process, and as its real binary where it must be killed.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{eventually, Recorded, Server, TempDir, UNREACHABLE};
use heimdall_agent::{run, AgentConfig, LogSource, QueueAuth, Spool};
use heimdall_events::{
    ControlBody, ControlMessage, Envelope, EventBody, EvictionKind, GameEvent, SaveAndStop, VmUp,
};
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

fn config(server: &Server, log: &Path, state: &Path) -> AgentConfig {
    AgentConfig {
        server_id: "vanaheim".into(),
        queue_endpoint: server.origin.clone(),
        queue_name: "events".into(),
        control_queue: None,
        control_poll: Duration::from_millis(50),
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
        stop_command: "true".into(),
        stop_timeout: Duration::from_secs(10),
        heartbeat: Duration::from_secs(3600),
        scheduled_events: false,
        public_ip: None,
        vm_name: None,
        imds_endpoint: server.origin.clone(),
        state_dir: state.to_owned(),
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

/// The game events as the app takes them: a put repeated (its answer was lost, so the agent
/// sent it again) counts once, at its first place, as reactions drops repeated ids.
fn delivered_events(requests: &[Recorded]) -> Vec<GameEvent> {
    let mut seen = std::collections::HashSet::new();
    requests
        .iter()
        .map(envelope_of)
        .filter(|envelope| seen.insert(envelope.id.clone()))
        .map(|envelope| match envelope.body {
            EventBody::Game(event) => event,
            other => panic!("not a game event: {other:?}"),
        })
        .collect()
}

/// The stop's own save (23 ms; the recorded log's last save took 14 ms) reached the queue once,
/// before the "game stopped (saved)" that lets the app scale in, and that came last.
fn saved_then_stopped(events: &[GameEvent]) -> bool {
    let stops_save =
        |e: &GameEvent| matches!(e, GameEvent::WorldSaved(saved) if saved.duration_ms == Some(23));
    let saves: Vec<usize> = (0..events.len())
        .filter(|&i| stops_save(&events[i]))
        .collect();
    let stopped = events
        .iter()
        .position(|e| matches!(e, GameEvent::GameStopped(stopped) if stopped.saved));
    matches!((saves.as_slice(), stopped), ([save], Some(at)) if *save < at && at + 1 == events.len())
}

fn parsed(log: &str) -> Vec<GameEvent> {
    let mut parser = LogParser::new();
    log.lines().flat_map(|line| parser.line(line)).collect()
}

fn vm_up() -> GameEvent {
    GameEvent::VmUp(VmUp {
        vm_name: "vmss-heimdall_0".into(),
        public_ip: Some("20.103.7.88".into()),
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
    // Ready with the code, Ingrid in and out, and the code changed.
    assert_eq!(expected.len(), 14);
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
        let from_log = !matches!(envelope.body, EventBody::Game(GameEvent::VmUp(_)));
        assert_eq!(envelope.id.starts_with("log-"), from_log, "{}", envelope.id);
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
    let spooled = Spool::open(&spool.join("spool"))
        .expect("spool")
        .pending()
        .expect("list");
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
    let spooled = Spool::open(&spool.join("spool")).expect("spool");
    assert!(eventually(WAIT, || spooled.pending().expect("list").len() == 9));
    assert!(eventually(WAIT, || refused.load(Ordering::Relaxed) >= 2));
    agent.stop();
    let left = spooled.pending().expect("list").len();
    assert_eq!(left, 9);

    // Restart with a queue that works and a log with nothing new: the log is read again from
    // its start, yet nothing is sent twice; the leftovers go first, then a new VmUp.
    let up = Server::start(azure_like);
    let mut second = config(&up, &log, &spool);
    second.public_ip = Some("20.0.0.2".into());
    second.vm_name = Some("vmss-heimdall_1".into());
    let agent = start(second);
    assert!(eventually(WAIT, || up.requests_to(QUEUE_PATH).len() >= 10));
    thread::sleep(Duration::from_millis(300));
    agent.stop();

    let mut expected = vec![vm_up()];
    expected.extend(parsed(SESSION));
    expected.push(GameEvent::VmUp(VmUp {
        vm_name: "vmss-heimdall_1".into(),
        public_ip: Some("20.0.0.2".into()),
    }));
    assert_eq!(game_events(&up.requests_to(QUEUE_PATH)), expected);
    assert!(spooled.pending().expect("list").is_empty());
}

/// A fresh folder with the recorded session as the game log, and the agent's state folder.
fn session_files(name: &str) -> (TempDir, PathBuf, PathBuf) {
    let dir = TempDir::new(name);
    let log = dir.path().join("valheim.log");
    fs::write(&log, SESSION).expect("write log");
    let state = dir.path().join("state");
    (dir, log, state)
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
    let spooled = Spool::open(&spool.join("spool"))
        .expect("spool")
        .pending()
        .expect("list");
    assert!(spooled.is_empty(), "left in the spool: {spooled:?}");
}

const CONTROL_PATH: &str = "/devstoreaccount1/control/messages";
const SCHEDULED_EVENTS_PATH: &str = "/metadata/scheduledevents";
/// What the game prints when `docker stop` asks it to save and quit.
const SAVE_LINE: &str = "Nov 20 21:30:08 supervisord: valheim-server 11/20/2026 21:30:08: World save (5/5) done. Total time [23ms]";

/// A stop command that "saves": the game's save line appears in the log, as on SIGTERM; each
/// run is counted in `runs`.
fn saving_stop(log: &Path, runs: &Path) -> String {
    format!(
        "echo run >> '{}'; echo '{SAVE_LINE}' >> '{}'",
        runs.display(),
        log.display()
    )
}

fn runs(path: &Path) -> usize {
    fs::read_to_string(path).map_or(0, |text| text.lines().count())
}

/// The recorded session behind a long stretch of Unity's noise, so that the stop is asked for
/// while the agent is still reading older lines, saves among them, as after a restart of the
/// agent on a long evening.
fn session_behind_a_backlog(log: &Path) {
    let noise = "Nov 20 19:59:46 supervisord: valheim-server (Filename: ./Runtime/Export/Debug/Debug.bindings.h Line: 35)\n";
    fs::write(log, noise.repeat(BACKLOG_LINES) + SESSION).expect("write log");
}

const BACKLOG_LINES: usize = 50_000;

/// A Get Messages answer (the contract's shape) holding these control messages.
fn control_list(messages: &[ControlMessage]) -> String {
    let items: String = messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            let text = base64::engine::general_purpose::STANDARD.encode(message.to_json());
            format!(
                "<QueueMessage><MessageId>m{i}</MessageId><InsertionTime>Fri, 09 Oct 2009 21:04:30 GMT</InsertionTime><ExpirationTime>Fri, 16 Oct 2009 21:04:30 GMT</ExpirationTime><PopReceipt>r{i}</PopReceipt><TimeNextVisible>Fri, 09 Oct 2009 23:29:20 GMT</TimeNextVisible><DequeueCount>1</DequeueCount><MessageText>{text}</MessageText></QueueMessage>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList>{items}</QueueMessagesList>"
    )
}

fn save_and_stop(id: &str, vm: &str) -> ControlMessage {
    ControlMessage::new(
        id.into(),
        "vanaheim".into(),
        Some(vm.into()),
        1,
        ControlBody::SaveAndStop(SaveAndStop {
            requested_by: "Ada".into(),
        }),
    )
}

#[test]
fn a_save_and_stop_for_this_vm_stops_the_game_and_reports_the_save() {
    let (dir, log, state) = session_files("control");
    session_behind_a_backlog(&log);
    let stops = dir.path().join("stops");
    let handed_out = Arc::new(AtomicBool::new(false));
    let server = Server::start({
        let handed_out = handed_out.clone();
        move |request| match (request.method.as_str(), request.path()) {
            ("GET", CONTROL_PATH) => {
                let messages = if handed_out.swap(true, Ordering::SeqCst) {
                    vec![]
                } else {
                    // An order left from an earlier boot of the scale set, then ours.
                    vec![
                        save_and_stop("stop-1", "vmss-heimdall_7"),
                        save_and_stop("stop-2", "vmss-heimdall_0"),
                    ]
                };
                (200, control_list(&messages))
            }
            ("DELETE", path) if path.starts_with(CONTROL_PATH) => (204, String::new()),
            _ => azure_like(request),
        }
    });
    let mut config = config(&server, &log, &state);
    config.control_queue = Some("control".into());
    config.stop_command = saving_stop(&log, &stops);
    let agent = start(config);
    let stopped = || {
        game_events(&server.requests_to(QUEUE_PATH))
            .into_iter()
            .any(|e| matches!(e, GameEvent::GameStopped(_)))
    };
    assert!(eventually(WAIT, stopped));
    agent.stop();

    assert_eq!(
        runs(&stops),
        1,
        "the game was stopped once, for this VM only"
    );
    let events = delivered_events(&server.requests_to(QUEUE_PATH));
    assert!(saved_then_stopped(&events), "{events:?}");
    let deleted: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.target)
        .collect();
    assert_eq!(deleted.len(), 2, "both messages are deleted: {deleted:?}");
    assert!(deleted.iter().any(|t| t.contains("/m1?popreceipt=r1")));
}

/// A Scheduled Events document announcing `event_type` for `vm`, `NotBefore` 30 s ahead.
fn scheduled_document(event_type: &str, vm: &str) -> String {
    let not_before =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
    serde_json::json!({
        "DocumentIncarnation": 2,
        "Events": [{
            "EventId": "602d9444-d2cd-49c7-8624-8643e7171297",
            "EventStatus": "Scheduled",
            "EventType": event_type,
            "ResourceType": "VirtualMachine",
            "Resources": [vm],
            "NotBefore": not_before,
            "Description": "",
            "EventSource": "Platform",
            "DurationInSeconds": -1
        }]
    })
    .to_string()
}

#[test]
fn a_spot_eviction_is_announced_saved_for_and_then_approved() {
    let (dir, log, state) = session_files("eviction");
    session_behind_a_backlog(&log);
    let stops = dir.path().join("stops");
    let server = Server::start(|request| match (request.method.as_str(), request.path()) {
        ("GET", SCHEDULED_EVENTS_PATH) if request.header("metadata") == Some("true") => {
            (200, scheduled_document("Preempt", "vmss-heimdall_0"))
        }
        ("POST", SCHEDULED_EVENTS_PATH) => (200, String::new()),
        _ => azure_like(request),
    });
    let mut config = config(&server, &log, &state);
    config.scheduled_events = true;
    config.stop_command = saving_stop(&log, &stops);
    let agent = start(config);
    let approved = || {
        !server
            .requests_to(SCHEDULED_EVENTS_PATH)
            .iter()
            .all(|r| r.method == "GET")
    };
    assert!(eventually(WAIT, approved));
    // The document keeps listing the event until it is over: it is acted on once.
    thread::sleep(Duration::from_millis(1500));
    agent.stop();

    let requests = server.requests();
    let approvals: Vec<usize> = (0..requests.len())
        .filter(|&i| requests[i].method == "POST" && requests[i].path() == SCHEDULED_EVENTS_PATH)
        .collect();
    assert_eq!(approvals.len(), 1);
    let approval: serde_json::Value =
        serde_json::from_slice(&requests[approvals[0]].body).expect("JSON approval");
    assert_eq!(
        approval,
        serde_json::json!({ "StartRequests": [{ "EventId": "602d9444-d2cd-49c7-8624-8643e7171297" }] })
    );
    // Warned, saved, stopped: all on the queue before the approval lets Azure take the VM.
    let puts_before: Vec<GameEvent> = delivered_events(
        &requests[..approvals[0]]
            .iter()
            .filter(|r| r.path() == QUEUE_PATH)
            .cloned()
            .collect::<Vec<_>>(),
    );
    // The notice is there from the start, so the warning may come while the recorded log is
    // still being read: what matters is warned, then the stop's save, then stopped last.
    let warned = puts_before
        .iter()
        .position(|e| matches!(e, GameEvent::EvictionComing(c) if c.kind == EvictionKind::Preempt))
        .unwrap_or_else(|| panic!("no warning before the approval: {puts_before:?}"));
    let after = &puts_before[warned + 1..];
    assert!(saved_then_stopped(after), "{after:?}");
    assert_eq!(runs(&stops), 1);
}

/// The recorded session as `docker logs --timestamps` shows it: one line every millisecond.
fn timestamped(log: &str, start_s: u64) -> Vec<String> {
    log.lines()
        .enumerate()
        .map(|(i, line)| {
            let at = std::time::UNIX_EPOCH + Duration::from_millis(start_s * 1000 + i as u64);
            format!("{} {line}", humantime::format_rfc3339_nanos(at))
        })
        .collect()
}

fn append_lines(path: &Path, lines: &[String]) {
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open log");
    for line in lines {
        writeln!(file, "{line}").expect("append");
    }
}

/// The agent's binary as a child process, killed (SIGKILL, as by the OOM killer or a crash)
/// when dropped, so that a failing test leaves nothing running.
struct AgentProcess(std::process::Child);

impl AgentProcess {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The agent's binary, configured through its environment as systemd does.
fn spawn_binary(server: &Server, log: &Path, state: &Path) -> AgentProcess {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_heimdall-agent"))
        .env_clear()
        .env("HEIMDALL_SERVER_ID", "vanaheim")
        .env("HEIMDALL_QUEUE_ENDPOINT", &server.origin)
        .env("HEIMDALL_STORAGE_ACCOUNT", "devstoreaccount1")
        .env("HEIMDALL_STORAGE_KEY", DEV_KEY)
        .env("HEIMDALL_LOG_FILE", log)
        .env("HEIMDALL_LOG_FROM_START", "1")
        .env("HEIMDALL_PUBLIC_IP", "20.103.7.88")
        .env("HEIMDALL_VM_NAME", "vmss-heimdall_0")
        .env("HEIMDALL_IMDS_ENDPOINT", &server.origin)
        .env("HEIMDALL_SCHEDULED_EVENTS", "off")
        .env("HEIMDALL_STATE_DIR", state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the agent binary starts");
    AgentProcess(child)
}

#[test]
fn killed_mid_stream_and_started_again_it_sends_every_event_once() {
    let dir = TempDir::new("sigkill");
    let log = dir.path().join("valheim.log");
    let state = dir.path().join("state");
    fs::write(&log, "").expect("log");
    // A slow queue, so that the kill finds events read but not yet sent.
    let server = Server::start(|request| {
        if request.path() == QUEUE_PATH {
            thread::sleep(Duration::from_millis(30));
        }
        azure_like(request)
    });
    let lines: Vec<String> = [SESSION, CROSSPLAY]
        .iter()
        .enumerate()
        .flat_map(|(run, text)| timestamped(text, 1_795_204_682 + run as u64 * 3600))
        .collect();
    let (first, rest) = lines.split_at(lines.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);

    let mut agent = spawn_binary(&server, &log, &state);
    append_lines(&log, first);
    assert!(eventually(WAIT, || server.requests_to(QUEUE_PATH).len() >= 2));
    append_lines(&log, second);
    thread::sleep(Duration::from_millis(40));
    agent.kill();

    let mut agent = spawn_binary(&server, &log, &state);
    append_lines(&log, third);
    let mut parser = LogParser::new();
    let expected: Vec<GameEvent> = [SESSION, CROSSPLAY]
        .iter()
        .flat_map(|text| text.lines())
        .flat_map(|line| parser.line(line))
        .collect();
    let from_log = || -> Vec<Envelope> {
        let mut seen = std::collections::HashSet::new();
        server
            .requests_to(QUEUE_PATH)
            .iter()
            .map(envelope_of)
            .filter(|e| e.id.starts_with("log-") && seen.insert(e.id.clone()))
            .collect()
    };
    assert!(eventually(WAIT, || from_log().len() >= expected.len()));
    thread::sleep(Duration::from_millis(500));
    agent.kill();

    let envelopes = from_log();
    let events: Vec<GameEvent> = envelopes
        .iter()
        .map(|e| match &e.body {
            EventBody::Game(event) => event.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(events, expected, "each event once, in the log's order");
    // A repeat after the restart is the same event under the same id, never a new id.
    for put in server.requests_to(QUEUE_PATH) {
        let envelope = envelope_of(&put);
        if let Some(first) = envelopes.iter().find(|e| e.id == envelope.id) {
            assert_eq!(first.body, envelope.body);
        }
    }
}

#[test]
fn thirty_seconds_without_the_queue_lose_nothing_and_keep_the_order() {
    let (_dir, log, state) = session_files("outage");
    let started = Instant::now();
    const OUTAGE: Duration = Duration::from_secs(30);
    // Half of it the queue cannot be reached at all (the connection closes unanswered), the
    // other half it answers that it is busy.
    let server = Server::start(move |request| {
        if request.path() == QUEUE_PATH && started.elapsed() < OUTAGE / 2 {
            return (UNREACHABLE, String::new());
        }
        if request.path() == QUEUE_PATH && started.elapsed() < OUTAGE {
            return (503, "<Error><Code>ServerBusy</Code></Error>".into());
        }
        azure_like(request)
    });
    let agent = start(config(&server, &log, &state));
    let mut expected = vec![vm_up()];
    expected.extend(parsed(SESSION));
    // Only the oldest event is tried while the queue is down, so once everything is through,
    // the last puts are the whole evening in order.
    let delivered = || {
        let puts = server.requests_to(QUEUE_PATH);
        puts.len() >= expected.len()
            && game_events(&puts[puts.len() - expected.len()..]) == expected
    };
    assert!(eventually(OUTAGE + WAIT, delivered));
    let caught_up = started.elapsed();
    agent.stop();

    let puts = server.requests_to(QUEUE_PATH);
    let refused = &puts[..puts.len() - expected.len()];
    assert!(
        game_events(refused).iter().all(|e| *e == expected[0]),
        "during the outage only the oldest event was tried"
    );
    assert!(caught_up >= OUTAGE);
    assert!(
        caught_up < OUTAGE + Duration::from_secs(12),
        "caught up {caught_up:?} after the outage began"
    );
}
