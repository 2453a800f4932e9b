//! The metadata service fake against the official examples and IMDS's documented rules.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_compatible, assert_has_keys, body_json, call, example};
use heimdall_fakes::MetadataFake;

const EVENTS: &str = "/metadata/scheduledevents?api-version=2020-07-01";
const META: (&str, &str) = ("metadata", "true");

async fn with_vm() -> MetadataFake {
    let fake = MetadataFake::start().await.expect("starts");
    fake.set_instance(Some("valheim_3".into()));
    fake
}

#[tokio::test]
async fn refuses_requests_without_the_metadata_header() {
    let fake = with_vm().await;
    for path in [
        EVENTS,
        "/metadata/instance/compute/name?api-version=2021-02-01&format=text",
    ] {
        let response = call("GET", &format!("{}{path}", fake.origin()), &[], b"").await;
        assert_eq!(response.status(), 400, "{path}");
    }
}

#[tokio::test]
async fn tells_the_vm_its_name_but_not_its_standard_public_ip() {
    let fake = with_vm().await;
    let name = call(
        "GET",
        &format!(
            "{}/metadata/instance/compute/name?api-version=2021-02-01&format=text",
            fake.origin()
        ),
        &[META],
        b"",
    )
    .await;
    assert_eq!(name.body(), b"valheim_3");
    let ip = call("GET", &format!("{}/metadata/instance/network/interface/0/ipv4/ipAddress/0/publicIpAddress?api-version=2021-02-01&format=text", fake.origin()), &[META], b"").await;
    assert_eq!(ip.status(), 200);
    assert_eq!(ip.body(), b"");
    fake.set_instance(None);
    let gone = call(
        "GET",
        &format!("{}/metadata/instance/compute/name", fake.origin()),
        &[META],
        b"",
    )
    .await;
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn tokens_have_the_documented_shape() {
    let fake = with_vm().await;
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com%2F",
        fake.origin()
    );
    let token = body_json(&call("GET", &url, &[META], b"").await);
    let documented = example("entra/imds-managed-identity-token-response.json");
    assert_has_keys(&token, &documented, &[]);
    assert_compatible(&token, &documented);
    assert_eq!(token["resource"], "https://storage.azure.com/");
}

#[tokio::test]
async fn an_injected_preempt_is_listed_and_starts_when_approved() {
    let fake = with_vm().await;
    let started = Arc::new(AtomicUsize::new(0));
    fake.on_event_start(Arc::new({
        let started = started.clone();
        move |kind: &str| {
            assert_eq!(kind, "Preempt");
            started.fetch_add(1, Ordering::SeqCst);
        }
    }));
    let url = format!("{}{EVENTS}", fake.origin());
    let empty = body_json(&call("GET", &url, &[META], b"").await);
    assert_eq!(empty["Events"], serde_json::json!([]));

    let id = fake
        .schedule("Preempt", Duration::from_secs(30))
        .expect("a VM runs");
    let document = body_json(&call("GET", &url, &[META], b"").await);
    let documented = example("scheduled-events/doc-incarnation-2-freeze-scheduled.json");
    assert_has_keys(&document, &documented, &[]);
    assert_compatible(&document, &documented);
    let event = &document["Events"][0];
    assert_eq!(event["EventId"], id.as_str());
    assert_eq!(event["EventStatus"], "Scheduled");
    assert_eq!(event["Resources"], serde_json::json!(["valheim_3"]));
    assert!(event["NotBefore"].as_str().unwrap().ends_with(" GMT"));
    assert!(document["DocumentIncarnation"].as_u64() > empty["DocumentIncarnation"].as_u64());

    let malformed = call("POST", &url, &[META], br#"{"StartRequests":[{"Id":"x"}]}"#).await;
    assert_eq!(malformed.status(), 400);
    let body = format!(r#"{{"StartRequests": [{{"EventId": "{id}"}}]}}"#);
    let approved = call("POST", &url, &[META], body.as_bytes()).await;
    assert_eq!(approved.status(), 200);
    assert_eq!(fake.approvals().len(), 1);
    let document = body_json(&call("GET", &url, &[META], b"").await);
    assert_eq!(document["Events"][0]["EventStatus"], "Started");
    assert_eq!(document["Events"][0]["NotBefore"], "");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(started.load(Ordering::SeqCst), 1);
    // Approving again is still fine, and starts nothing twice.
    let again = call("POST", &url, &[META], body.as_bytes()).await;
    assert_eq!(again.status(), 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(started.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_event_nobody_approves_starts_at_not_before() {
    let fake = with_vm().await;
    let started = Arc::new(AtomicUsize::new(0));
    fake.on_event_start(Arc::new({
        let started = started.clone();
        move |_: &str| {
            started.fetch_add(1, Ordering::SeqCst);
        }
    }));
    fake.schedule("Preempt", Duration::from_millis(100));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(started.load(Ordering::SeqCst), 1);
    assert!(fake.approvals().is_empty());
}
