//! The I/O every component shell does, in one place: sending the requests that the sans-IO
//! crates build, reading Spin variables, and answering with JSON or text.

use anyhow::{anyhow, Context};
use futures::SinkExt;
use spin_sdk::http::{Fields, OutgoingResponse, Request, Response, ResponseOutparam};

/// Sends a request built by a sans-IO crate and returns the whole response.
///
/// Goes through spin-sdk's own `Response` so that a broken response body is an error here,
/// never a panic inside the SDK's conversion.
pub async fn send(request: http::Request<Vec<u8>>) -> anyhow::Result<http::Response<Vec<u8>>> {
    let what = format!("{} {}", request.method(), redact_query(request.uri()));
    let response: Response = spin_sdk::http::send(request)
        .await
        .with_context(|| format!("sending {what}"))?;
    let mut builder = http::Response::builder().status(*response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value.as_bytes());
    }
    builder
        .body(response.into_body())
        .with_context(|| format!("reading the response to {what}"))
}

/// The URI without its query, which may hold a SAS signature or a pop receipt.
fn redact_query(uri: &http::Uri) -> String {
    let mut shown = String::new();
    if let Some(scheme) = uri.scheme_str() {
        shown.push_str(scheme);
        shown.push_str("://");
    }
    if let Some(authority) = uri.authority() {
        shown.push_str(authority.as_str());
    }
    shown.push_str(uri.path());
    shown
}

/// Bodies up to this size are written whole before the response is handed to the host. Every
/// answer the components give is far smaller; wasmtime's wasi-http buffers two chunks of up to
/// 1 MiB before a writer has to wait for the server to read, so this never blocks.
const WRITE_AHEAD_MAX: usize = 64 * 1024;

/// Sends `response` to the caller now, so the component can go on working after answering.
///
/// The body is written and finished before the response is set, with its `content-length`: the
/// host's server then has the head and the whole body at once and sends them together. Set
/// first, Spin's server often sends the head alone, and on a reused connection the body then
/// waits for the client's delayed ACK (Nagle), about 40 ms.
pub async fn answer(out: ResponseOutparam, response: Response) {
    let status = *response.status();
    let mut headers: Vec<(String, Vec<u8>)> = response
        .headers()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        .map(|(name, value)| (name.to_owned(), value.as_bytes().to_vec()))
        .collect();
    let body = response.into_body();
    headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    let outgoing = match Fields::from_list(&headers) {
        Ok(fields) => OutgoingResponse::new(fields),
        Err(e) => {
            eprintln!("answer: bad response headers: {e}");
            OutgoingResponse::new(Fields::new())
        }
    };
    // Every status we build is a valid one, so this cannot fail.
    let _ = outgoing.set_status_code(status);
    let mut sink = outgoing.take_body();
    let sent = if body.len() <= WRITE_AHEAD_MAX {
        let sent = sink.send(body).await;
        // Dropping the sink finishes the body.
        drop(sink);
        out.set(outgoing);
        sent
    } else {
        out.set(outgoing);
        sink.send(body).await
    };
    if let Err(e) = sent {
        eprintln!("answer: the caller went away: {e}");
    }
}

/// A component variable that must be set.
pub fn variable(name: &str) -> anyhow::Result<String> {
    spin_sdk::variables::get(name).map_err(|e| anyhow!("variable `{name}`: {e}"))
}

/// A JSON answer.
pub fn json<T: serde::Serialize>(status: u16, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(bytes)
            .build(),
        Err(e) => text(500, &format!("could not encode the answer: {e}")),
    }
}

/// A plain-text answer.
pub fn text(status: u16, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(body.as_bytes().to_vec())
        .build()
}

/// Whether the request carries `Authorization: Bearer <secret>`, compared in constant time.
pub fn has_bearer(request: &Request, secret: &str) -> bool {
    let Some(value) = request.header("authorization").and_then(|v| v.as_str()) else {
        return false;
    };
    let Some(token) = value.strip_prefix("Bearer ") else {
        return false;
    };
    !secret.is_empty() && constant_time_eq(token.as_bytes(), secret.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_query_strings() {
        let uri: http::Uri = "http://127.0.0.1:10001/acct/events/messages/1?popreceipt=secret"
            .parse()
            .unwrap();
        assert_eq!(
            redact_query(&uri),
            "http://127.0.0.1:10001/acct/events/messages/1"
        );
    }

    #[test]
    fn compares_secrets_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
