//! Azure Scheduled Events, without I/O: the requests to send to the instance metadata service
//! and what its documents mean for this VM. The shapes are those of the official examples
//! (`examples/scheduled-events/` of the contracts).

use anyhow::Context as _;
use heimdall_events::EvictionKind;
use serde::Deserialize;

/// The API version whose document carries `EventSource` and `DurationInSeconds`.
const PATH: &str = "/metadata/scheduledevents?api-version=2020-07-01";

/// `GET …/metadata/scheduledevents` with `Metadata: true` (IMDS refuses requests without it).
pub fn document_request(imds_endpoint: &str) -> anyhow::Result<http::Request<Vec<u8>>> {
    http::Request::get(url(imds_endpoint))
        .header("metadata", "true")
        .body(Vec::new())
        .context("HEIMDALL_IMDS_ENDPOINT does not make a valid URL")
}

/// `POST …/metadata/scheduledevents` with `{"StartRequests":[{"EventId":…}]}`: Azure may go
/// ahead now instead of waiting for `NotBefore`.
pub fn approve_request(
    imds_endpoint: &str,
    event_id: &str,
) -> anyhow::Result<http::Request<Vec<u8>>> {
    let body = serde_json::json!({ "StartRequests": [{ "EventId": event_id }] });
    http::Request::post(url(imds_endpoint))
        .header("metadata", "true")
        .header("content-type", "application/json")
        .body(body.to_string().into_bytes())
        .context("HEIMDALL_IMDS_ENDPOINT does not make a valid URL")
}

fn url(imds_endpoint: &str) -> String {
    format!("{}{PATH}", imds_endpoint.trim_end_matches('/'))
}

/// One Scheduled Events document.
#[derive(Deserialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Document {
    /// Grows whenever `Events` changes.
    pub document_incarnation: u64,
    pub events: Vec<Event>,
}

#[derive(Deserialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    pub event_id: String,
    pub event_type: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub event_status: String,
    /// RFC 1123; empty once the event has started.
    #[serde(default)]
    pub not_before: String,
}

/// An event that takes the game down on this VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub event_id: String,
    pub kind: EvictionKind,
    pub not_before: String,
}

pub fn parse_document(response: &http::Response<Vec<u8>>) -> anyhow::Result<Document> {
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("Scheduled Events answered {status}");
    }
    serde_json::from_slice(response.body()).context("Scheduled Events document")
}

/// The events of `document` that stop the game on `vm_name`: the VM is named in `Resources`
/// and the type takes the VM away or restarts it (a `Freeze` of a few seconds does neither).
pub fn notices_for(document: &Document, vm_name: &str) -> Vec<Notice> {
    document
        .events
        .iter()
        .filter(|event| {
            event
                .resources
                .iter()
                .any(|r| r.eq_ignore_ascii_case(vm_name))
        })
        .filter_map(|event| {
            Some(Notice {
                event_id: event.event_id.clone(),
                kind: EvictionKind::from_event_type(&event.event_type)?,
                not_before: event.not_before.clone(),
            })
        })
        .collect()
}

/// The events' ids must go into our event ids: keep what an id may hold.
pub fn id_part(event_id: &str) -> String {
    event_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLES: &str = "../../shared/contracts/examples/scheduled-events";

    fn example(name: &str) -> http::Response<Vec<u8>> {
        let path = format!("{}/{EXAMPLES}/{name}", env!("CARGO_MANIFEST_DIR"));
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        http::Response::builder().status(200).body(body).unwrap()
    }

    #[test]
    fn reads_the_documented_documents() {
        let empty = parse_document(&example("doc-incarnation-1-empty.json")).unwrap();
        assert_eq!(empty.document_incarnation, 1);
        assert!(empty.events.is_empty());
        let freeze = parse_document(&example("doc-incarnation-2-freeze-scheduled.json")).unwrap();
        assert_eq!(freeze.events[0].event_type, "Freeze");
        assert_eq!(freeze.events[0].not_before, "Mon, 11 Apr 2022 22:26:58 GMT");
        // A freeze neither deletes nor restarts the VM: nothing to do.
        assert!(notices_for(&freeze, "WestNO_0").is_empty());
    }

    #[test]
    fn a_preempt_for_this_vm_is_a_notice_and_for_another_is_not() {
        let mut body =
            String::from_utf8(example("doc-incarnation-2-freeze-scheduled.json").into_body())
                .unwrap();
        body = body.replace("\"Freeze\"", "\"Preempt\"");
        let response = http::Response::builder()
            .status(200)
            .body(body.into_bytes())
            .unwrap();
        let document = parse_document(&response).unwrap();
        let notices = notices_for(&document, "westno_1");
        assert_eq!(
            notices,
            vec![Notice {
                event_id: "C7061BAC-AFDC-4513-B24B-AA5F13A16123".into(),
                kind: EvictionKind::Preempt,
                not_before: "Mon, 11 Apr 2022 22:26:58 GMT".into(),
            }]
        );
        assert!(notices_for(&document, "WestNO_2").is_empty());
    }

    #[test]
    fn the_approval_has_the_documented_shape() {
        let request = approve_request("http://169.254.169.254/", "f020ba2e-3bc0").unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(
            request.uri(),
            "http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01"
        );
        assert_eq!(request.headers()["metadata"], "true");
        let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        let documented: serde_json::Value = serde_json::from_slice(
            &std::fs::read(format!(
                "{}/{EXAMPLES}/start-requests-body.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            body["StartRequests"][0]
                .as_object()
                .map(|o| o.keys().collect::<Vec<_>>()),
            documented["StartRequests"][0]
                .as_object()
                .map(|o| o.keys().collect::<Vec<_>>())
        );
        assert_eq!(body["StartRequests"][0]["EventId"], "f020ba2e-3bc0");
    }

    #[test]
    fn refuses_errors_and_garbage() {
        let gone = http::Response::builder().status(410).body(vec![]).unwrap();
        assert!(parse_document(&gone).is_err());
        let garbage = http::Response::builder()
            .status(200)
            .body(b"{\"Events\":1}".to_vec())
            .unwrap();
        assert!(parse_document(&garbage).is_err());
        assert_eq!(id_part("C7061BAC-AFDC/../x y"), "C7061BAC-AFDCxy");
    }
}
