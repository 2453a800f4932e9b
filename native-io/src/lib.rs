//! The I/O the native shells share, the agent on the VM and the owner's command line: sending
//! the `http::Request` values that the sans-IO crates build, over ureq (HTTPS with rustls to the
//! real services, plain HTTP to the local fakes), and timing each answer.

use std::error::Error as _;
use std::io::Read;
use std::time::{Duration, Instant};

/// Every answer we read is small (JSON, queue XML, IMDS text); a larger body is cut here.
const MAX_BODY: u64 = 1024 * 1024;

/// No answer came: DNS, connection, TLS or timeout. Says why, never with the URL's query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An answer, and how long it took to come.
pub struct Answer {
    pub response: http::Response<Vec<u8>>,
    pub elapsed: Duration,
}

/// One client for a process's whole life, so that connections are reused.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
}

impl Http {
    /// Each call may take `timeout` in all, its connection at most 5 s of it.
    pub fn new(timeout: Duration) -> Http {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            // A redirect would carry our Authorization header elsewhere: never follow one.
            .redirects(0)
            .build();
        Http { agent }
    }

    /// Sends the request; every HTTP status is an answer (ureq's `Err(Status)` for 4xx and 5xx
    /// is turned back into one).
    pub fn send(&self, request: http::Request<Vec<u8>>) -> Result<Answer, Unreachable> {
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let mut call = self.agent.request(parts.method.as_str(), &url);
        for (name, value) in &parts.headers {
            let value = value
                .to_str()
                .map_err(|_| Unreachable(format!("header {name} is not text")))?;
            call = call.set(name.as_str(), value);
        }
        let started = Instant::now();
        let result = if body.is_empty() && parts.method == http::Method::GET {
            call.call()
        } else {
            call.send_bytes(&body)
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(transport)) => return Err(unreachable(&transport)),
        };
        let response = into_http(response)?;
        Ok(Answer {
            response,
            elapsed: started.elapsed(),
        })
    }
}

/// ureq's kind, its message and the cause beneath ("Connection Failed: Connect error:
/// Connection refused (os error 111)").
fn unreachable(transport: &ureq::Transport) -> Unreachable {
    let mut text = transport.kind().to_string();
    for part in [
        transport.message().map(str::to_owned),
        transport.source().map(ToString::to_string),
    ]
    .into_iter()
    .flatten()
    {
        text.push_str(": ");
        text.push_str(&part);
    }
    Unreachable(text)
}

fn into_http(response: ureq::Response) -> Result<http::Response<Vec<u8>>, Unreachable> {
    let mut builder = http::Response::builder().status(response.status());
    for name in response.headers_names() {
        for value in response.all(&name) {
            builder = builder.header(name.as_str(), value);
        }
    }
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_BODY)
        .read_to_end(&mut body)
        .map_err(|e| Unreachable(format!("the answer broke off: {e}")))?;
    builder
        .body(body)
        .map_err(|e| Unreachable(format!("the answer is not valid HTTP: {e}")))
}

/// For logs: a query may hold a SAS token or other secrets.
pub fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}
