//! The agent's HTTP client: the native shells' sender with the agent's time limit, its errors as
//! `anyhow` errors that name the call (never its query).

use std::time::Duration;

pub use heimdall_native_io::without_query;

/// How long one call may take in all (its connection at most 5 s of it).
const TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP client for the agent's whole life, so that connections are reused.
#[derive(Clone)]
pub struct Http(heimdall_native_io::Http);

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        Http(heimdall_native_io::Http::new(TIMEOUT))
    }

    /// Sends the request. Any HTTP status is a response; an error means no answer came (DNS,
    /// connect, timeout, I/O).
    pub fn send(&self, request: http::Request<Vec<u8>>) -> anyhow::Result<http::Response<Vec<u8>>> {
        let what = format!(
            "{} {}",
            request.method(),
            without_query(&request.uri().to_string())
        );
        self.0
            .send(request)
            .map(|answer| answer.response)
            .map_err(|e| anyhow::anyhow!("{what} failed: {e}"))
    }
}
