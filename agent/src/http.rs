//! Sends the `http::Request` values that the sans-IO crates build, over ureq.

use std::io::Read;
use std::time::Duration;

use anyhow::Context as _;

/// Responses are small (queue XML, kick replies, IMDS text); a larger body is cut here.
const MAX_RESPONSE_BODY: u64 = 1024 * 1024;

/// One HTTP client for the agent's whole life, so that connections are reused.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            // A redirect would carry our Authorization header to another place: never follow.
            .redirects(0)
            .build();
        Http { agent }
    }

    /// Sends the request. Any HTTP status is a response (ureq's `Err(Status)` for 4xx and 5xx is
    /// turned back into one); an error means no answer came (DNS, connect, timeout, I/O).
    pub fn send(&self, request: http::Request<Vec<u8>>) -> anyhow::Result<http::Response<Vec<u8>>> {
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let mut call = self.agent.request(parts.method.as_str(), &url);
        for (name, value) in &parts.headers {
            let value = value
                .to_str()
                .with_context(|| format!("header {name} is not text"))?;
            call = call.set(name.as_str(), value);
        }
        let result = if body.is_empty() && parts.method == http::Method::GET {
            call.call()
        } else {
            call.send_bytes(&body)
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => {
                return Err(anyhow::Error::new(error).context(format!(
                    "{} {} failed",
                    parts.method,
                    without_query(&url)
                )))
            }
        };
        into_http(response)
    }
}

fn into_http(response: ureq::Response) -> anyhow::Result<http::Response<Vec<u8>>> {
    let mut builder = http::Response::builder().status(response.status());
    for name in response.headers_names() {
        for value in response.all(&name) {
            builder = builder.header(name.as_str(), value);
        }
    }
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_RESPONSE_BODY)
        .read_to_end(&mut body)
        .context("reading the response body")?;
    builder.body(body).context("response is not valid HTTP")
}

/// For logs: a query may hold a SAS token or other secrets.
pub fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}
