//! Fake Azure Instance Metadata Service of the game VM (`169.254.169.254` on Azure): the VM's
//! name (`format=text`), no public address (IMDS reports Basic public IPs only, and the scale
//! set's are Standard), Entra tokens of its managed identity, and Scheduled
//! Events, into which a test injects an event (a spot `Preempt`, say). Approvals
//! (`StartRequests`) are recorded; an event starts when it is approved or its `NotBefore`
//! passes, and the fake then calls the hook the sandbox gave it (which makes Azure take the VM).
//!
//! Like IMDS, it refuses every request without `Metadata: true` (400), and answers 200 to any
//! well-formed approval (even of an unknown or already approved event) and 400 otherwise.
//! Shapes: `examples/scheduled-events/` and `examples/entra/imds-managed-identity-token-response.json`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::task::AbortHandle;

use crate::server::Server;
use crate::util::{guid, json, lock, query_param, random_hex, Reply};
use crate::RecordedRequest;

/// Called with the event type when an event starts.
pub type EventHook = Arc<dyn Fn(&str) + Send + Sync>;

/// One approval, as IMDS received it.
#[derive(Debug, Clone)]
pub struct Approval {
    pub event_id: String,
    pub at: Instant,
}

/// A scheduled event the test injected.
#[derive(Debug, Clone)]
pub struct Injected {
    pub event_id: String,
    pub event_type: String,
    /// When it was put into the document.
    pub at: Instant,
}

pub struct MetadataFake {
    server: Server,
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    hook: Mutex<Option<EventHook>>,
}

#[derive(Default)]
struct State {
    /// The name of the VM that runs now.
    instance: Option<String>,
    incarnation: u64,
    events: Vec<Event>,
    injected: Vec<Injected>,
    approvals: Vec<Approval>,
    requests: Vec<RecordedRequest>,
}

struct Event {
    id: String,
    event_type: String,
    resources: Vec<String>,
    not_before: SystemTime,
    started: bool,
    timer: AbortHandle,
}

impl MetadataFake {
    pub async fn start() -> anyhow::Result<MetadataFake> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                incarnation: 1,
                ..State::default()
            }),
            hook: Mutex::new(None),
        });
        let for_server = Arc::clone(&shared);
        let server =
            Server::start(move |_origin| Arc::new(move |request| handle(&for_server, request)))
                .await?;
        Ok(MetadataFake { server, shared })
    }

    /// `http://127.0.0.1:PORT`: the agent's `HEIMDALL_IMDS_ENDPOINT`.
    pub fn origin(&self) -> String {
        self.server.origin()
    }

    /// The name of the VM that runs now (`None`: none). A new VM starts with no scheduled
    /// events.
    pub fn set_instance(&self, instance: Option<String>) {
        let mut state = lock(&self.shared.state);
        for event in state.events.drain(..) {
            event.timer.abort();
        }
        state.incarnation += 1;
        state.instance = instance;
    }

    /// What to do when an event starts (the sandbox evicts the VM on `Preempt`).
    pub fn on_event_start(&self, hook: EventHook) {
        *lock(&self.shared.hook) = Some(hook);
    }

    /// Announces an event of `event_type` for the running VM, `notice` ahead; returns its id.
    /// `None` when no VM runs.
    pub fn schedule(&self, event_type: &str, notice: Duration) -> Option<String> {
        let mut state = lock(&self.shared.state);
        let vm_name = state.instance.clone()?;
        let id = guid().to_uppercase();
        let shared = Arc::clone(&self.shared);
        let timer_id = id.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(notice).await;
            start_event(&shared, &timer_id);
        });
        state.events.push(Event {
            id: id.clone(),
            event_type: event_type.to_owned(),
            resources: vec![vm_name],
            not_before: SystemTime::now() + notice,
            started: false,
            timer: timer.abort_handle(),
        });
        state.injected.push(Injected {
            event_id: id.clone(),
            event_type: event_type.to_owned(),
            at: Instant::now(),
        });
        state.incarnation += 1;
        Some(id)
    }

    pub fn approvals(&self) -> Vec<Approval> {
        lock(&self.shared.state).approvals.clone()
    }

    pub fn injected(&self) -> Vec<Injected> {
        lock(&self.shared.state).injected.clone()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.state).requests.clone()
    }

    /// Stops serving and the event timers; returns once the port is closed.
    pub async fn shutdown(mut self) {
        self.set_instance(None);
        self.server.stop().await;
    }
}

/// The event starts: `Started`, an empty `NotBefore`, and Azure acts (the hook).
fn start_event(shared: &Shared, id: &str) {
    let event_type = {
        let mut state = lock(&shared.state);
        let Some(event) = state.events.iter_mut().find(|e| e.id == id && !e.started) else {
            return;
        };
        event.started = true;
        event.timer.abort();
        let event_type = event.event_type.clone();
        state.incarnation += 1;
        event_type
    };
    // Azure acts a moment later, not inside the request that approved the event.
    if let Some(hook) = lock(&shared.hook).clone() {
        tokio::spawn(async move { hook(&event_type) });
    }
}

fn handle(shared: &Arc<Shared>, request: http::Request<Bytes>) -> Reply {
    lock(&shared.state)
        .requests
        .push(RecordedRequest::of(&request));
    if request
        .headers()
        .get("metadata")
        .and_then(|v| v.to_str().ok())
        != Some("true")
    {
        return json(
            400,
            serde_json::json!({ "error": "Bad request. Required metadata header not specified" }),
        );
    }
    let path = request.uri().path().to_owned();
    match (request.method().clone(), path.as_str()) {
        (http::Method::GET, "/metadata/instance/compute/name") => vm_name(shared),
        // Empty, as for every Standard public IP.
        (
            http::Method::GET,
            "/metadata/instance/network/interface/0/ipv4/ipAddress/0/publicIpAddress",
        ) => Reply::text(200, ""),
        (http::Method::GET, "/metadata/identity/oauth2/token") => token(&request),
        (http::Method::GET, "/metadata/scheduledevents") => document(shared),
        (http::Method::POST, "/metadata/scheduledevents") => approve(shared, &request),
        _ => json(404, serde_json::json!({ "error": "Not found" })),
    }
}

/// The VM's name as text; 404 while no VM runs.
fn vm_name(shared: &Shared) -> Reply {
    match &lock(&shared.state).instance {
        Some(name) => Reply::text(200, name),
        None => json(404, serde_json::json!({ "error": "Not found" })),
    }
}

/// A token of the managed identity for the `resource` asked, with IMDS's string numbers.
fn token(request: &http::Request<Bytes>) -> Reply {
    let Some(resource) = query_param(request.uri(), "resource") else {
        return json(
            400,
            serde_json::json!({ "error": "invalid_request", "error_description": "Required query variable 'resource' is missing" }),
        );
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    json(
        200,
        serde_json::json!({
            "access_token": format!("imds.{}", random_hex(24)),
            "refresh_token": "",
            "expires_in": "3599",
            "expires_on": (now + 3599).to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer"
        }),
    )
}

/// The Scheduled Events document, shaped like `doc-incarnation-2-freeze-scheduled.json`.
fn document(shared: &Shared) -> Reply {
    let state = lock(&shared.state);
    let events: Vec<serde_json::Value> = state
        .events
        .iter()
        .map(|event| {
            serde_json::json!({
                "EventId": event.id,
                "EventStatus": if event.started { "Started" } else { "Scheduled" },
                "EventType": event.event_type,
                "ResourceType": "VirtualMachine",
                "Resources": event.resources,
                "NotBefore": if event.started { String::new() } else { httpdate::fmt_http_date(event.not_before) },
                "Description": "",
                "EventSource": "Platform",
                "DurationInSeconds": -1
            })
        })
        .collect();
    json(
        200,
        serde_json::json!({ "DocumentIncarnation": state.incarnation, "Events": events }),
    )
}

/// `{"StartRequests":[{"EventId":…}]}`: recorded, and the events named start now.
fn approve(shared: &Arc<Shared>, request: &http::Request<Bytes>) -> Reply {
    let ids: Option<Vec<String>> = serde_json::from_slice::<serde_json::Value>(request.body())
        .ok()
        .and_then(|body| {
            body.get("StartRequests")?
                .as_array()?
                .iter()
                .map(|item| Some(item.get("EventId")?.as_str()?.to_owned()))
                .collect()
        });
    let Some(ids) = ids.filter(|ids| !ids.is_empty()) else {
        return json(
            400,
            serde_json::json!({ "error": "Bad request. Invalid StartRequests" }),
        );
    };
    {
        let mut state = lock(&shared.state);
        for id in &ids {
            state.approvals.push(Approval {
                event_id: id.clone(),
                at: Instant::now(),
            });
        }
    }
    for id in &ids {
        start_event(shared, id);
    }
    Reply::text(200, "")
}
