//! The I/O every component shell does, in one place: sending the requests that the sans-IO
//! crates build, reading Spin variables, and answering with JSON or text.

use anyhow::{anyhow, Context};
use futures::SinkExt;
use spin_sdk::http::conversions::TryIntoOutgoingRequest;
use spin_sdk::http::{Fields, OutgoingResponse, Request, Response, ResponseOutparam};

pub mod log;
pub use log::Log;

/// Lines about answering the caller, whichever component answers.
const LOG: Log = Log::new("http");

/// Sends a request built by a sans-IO crate and returns the whole response.
///
/// A body of up to [`WRITE_AHEAD_MAX`] is written and finished before the request goes to the
/// host, for the reason [`answer`] gives: spin-sdk's own `send` hands the request over first,
/// and Spin's client, which reuses connections and does not set TCP_NODELAY, then often sends
/// the head alone and the body one delayed ACK (about 40 ms) later.
///
/// Goes through spin-sdk's own `Response` so that a broken response body is an error here,
/// never a panic inside the SDK's conversion.
pub async fn send(request: http::Request<Vec<u8>>) -> anyhow::Result<http::Response<Vec<u8>>> {
    let what = format!("{} {}", request.method(), redact_query(request.uri()));
    let (outgoing, body) = request
        .try_into_outgoing_request()
        .with_context(|| format!("building {what}"))?;
    let body = body.unwrap_or_default();
    let sink = outgoing.take_body();
    let sent = if body.len() <= WRITE_AHEAD_MAX {
        write_all(sink, body).await?;
        spin_sdk::http::send::<_, Response>(outgoing).await
    } else {
        let (sent, written) = futures::join!(
            spin_sdk::http::send::<_, Response>(outgoing),
            write_all(sink, body)
        );
        written?;
        sent
    };
    let response = sent.with_context(|| format!("sending {what}"))?;
    let mut builder = http::Response::builder().status(*response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value.as_bytes());
    }
    builder
        .body(response.into_body())
        .with_context(|| format!("reading the response to {what}"))
}

/// Writes a whole request body and finishes it (the sink finishes the body when dropped).
async fn write_all<E>(
    sink: impl futures::Sink<Vec<u8>, Error = E>,
    body: Vec<u8>,
) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let mut sink = std::pin::pin!(sink);
    if !body.is_empty() {
        sink.send(body).await.context("writing the request body")?;
    }
    Ok(())
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
            LOG.error(None, format_args!("bad response headers: {e}"));
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
        // The caller's business (a VM deleted mid-kick, a client that timed out): what the
        // request started goes on regardless.
        LOG.info(
            None,
            format_args!("the caller went away before the whole answer: {e}"),
        );
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

/// The query parameter that carries the app's secret for a caller that cannot set headers.
pub const SECRET_PARAMETER: &str = "secret";

/// Whether the request carries the app's secret, compared in constant time: as
/// `Authorization: Bearer <secret>`, or as `?secret=<secret>` (percent-encoded) for a scheduler
/// that can send only a path and query (`spin aka cron`). Whoever reads the query must never
/// log it.
pub fn carries_secret(request: &Request, secret: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    let matches = |given: &[u8]| constant_time_eq(given, secret.as_bytes());
    bearer(request).is_some_and(|token| matches(token.as_bytes()))
        || query_secret(request.query()).is_some_and(|given| matches(given.as_bytes()))
}

fn bearer(request: &Request) -> Option<&str> {
    request
        .header("authorization")?
        .as_str()?
        .strip_prefix("Bearer ")
}

/// The first `secret` parameter of a query string, percent-decoded.
fn query_secret(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == SECRET_PARAMETER)
        .map(|(_, value)| value.into_owned())
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
    fn finds_the_secret_in_a_query() {
        assert_eq!(query_secret("secret=abc").as_deref(), Some("abc"));
        assert_eq!(query_secret("x=1&secret=a%2Bb%3D").as_deref(), Some("a+b="));
        assert_eq!(query_secret("secrets=abc"), None);
        assert_eq!(query_secret(""), None);
    }

    #[test]
    fn takes_the_secret_as_bearer_or_in_the_query() {
        let request = |uri: &str, authorization: Option<&str>| {
            let mut builder = Request::builder();
            builder.method(spin_sdk::http::Method::Get).uri(uri);
            if let Some(value) = authorization {
                builder.header("authorization", value);
            }
            builder.build()
        };
        let tick = "http://app/reactions/tick";
        assert!(carries_secret(&request(tick, Some("Bearer s3")), "s3"));
        assert!(carries_secret(
            &request(&format!("{tick}?secret=s3"), None),
            "s3"
        ));
        assert!(!carries_secret(&request(tick, Some("Bearer s4")), "s3"));
        assert!(!carries_secret(
            &request(&format!("{tick}?secret=s4"), None),
            "s3"
        ));
        assert!(!carries_secret(&request(tick, Some("s3")), "s3"));
        assert!(!carries_secret(&request(tick, None), "s3"));
        // An app without a secret refuses everyone, even callers that send an empty one.
        assert!(!carries_secret(
            &request(&format!("{tick}?secret="), None),
            ""
        ));
    }

    #[test]
    fn compares_secrets_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
