//! Entra access tokens for Azure Storage from the instance metadata service (the VM's managed
//! identity), without I/O: the request to send, the parsing of the answer, and when to ask again.
//! `imds::TokenSource` sends the request and keeps the token.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use heimdall_azure_storage::BearerToken;
use serde::Deserialize;

/// IMDS's token route and the version whose answer `examples/entra/…` shows.
const TOKEN_PATH: &str = "/metadata/identity/oauth2/token?api-version=2018-02-01";
/// `https://storage.azure.com/` (the storage crate's `STORAGE_RESOURCE`), percent-encoded for
/// the query string.
const STORAGE_RESOURCE_QUERY: &str = "https%3A%2F%2Fstorage.azure.com%2F";
/// A token is renewed this long before it expires (at most half its lifetime), so that a slow
/// or briefly failing IMDS never leaves the agent with an expired one.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The longest piece of an IMDS error description that goes into a log line.
const MAX_DESCRIPTION: usize = 200;

/// `GET {imds}/metadata/identity/oauth2/token?…&resource=https://storage.azure.com/` with
/// `Metadata: true` (IMDS refuses requests without it, which keeps out forwarded requests).
pub fn token_request(imds_endpoint: &str) -> anyhow::Result<http::Request<Vec<u8>>> {
    let url = format!(
        "{}{TOKEN_PATH}&resource={STORAGE_RESOURCE_QUERY}",
        imds_endpoint.trim_end_matches('/')
    );
    http::Request::get(url)
        .header("metadata", "true")
        .body(Vec::new())
        .context("HEIMDALL_IMDS_ENDPOINT does not make a valid URL")
}

/// A token and how long it is valid, counted from when it was asked for.
#[derive(Debug)]
pub struct ImdsToken {
    pub token: BearerToken,
    pub lifetime: Duration,
}

/// The token of a 200 answer; any other answer is an error that says why (IMDS's `error` and
/// `error_description`). No error message ever repeats the token.
pub fn parse_token_response(
    response: &http::Response<Vec<u8>>,
    now: SystemTime,
) -> anyhow::Result<ImdsToken> {
    let status = response.status();
    if !status.is_success() {
        bail!(
            "IMDS token request answered {status}{}",
            error_detail(response.body())
        );
    }
    // serde_json's messages can quote the value they choke on: keep only where it happened.
    let body: TokenResponse = serde_json::from_slice(response.body()).map_err(|error| {
        anyhow::anyhow!(
            "IMDS token response is not the expected JSON (line {}, column {})",
            error.line(),
            error.column()
        )
    })?;
    if !body.token_type.eq_ignore_ascii_case("bearer") {
        bail!("IMDS gave a {:?} token, not a Bearer one", body.token_type);
    }
    let token = BearerToken::new(&body.access_token).context("IMDS token")?;
    Ok(ImdsToken {
        token,
        lifetime: lifetime(&body, now)?,
    })
}

/// What a 200 answer holds that we use (§5.3 of PROTOCOLS.md).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<Seconds>,
    expires_on: Option<Seconds>,
    #[serde(default = "bearer")]
    token_type: String,
}

fn bearer() -> String {
    "Bearer".into()
}

/// IMDS writes its numbers as strings (`"3599"`); Entra's own token endpoint writes numbers.
/// Both are taken.
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

impl Seconds {
    fn value(&self, field: &str) -> anyhow::Result<u64> {
        match self {
            Seconds::Number(n) => Ok(*n),
            Seconds::Text(text) => text
                .trim()
                .parse()
                .with_context(|| format!("IMDS token {field} is not a number of seconds")),
        }
    }
}

/// `expires_in` when given: it does not depend on our clock agreeing with Entra's. Otherwise
/// `expires_on` (Unix seconds) minus `now`.
fn lifetime(body: &TokenResponse, now: SystemTime) -> anyhow::Result<Duration> {
    if let Some(expires_in) = &body.expires_in {
        return Ok(Duration::from_secs(expires_in.value("expires_in")?));
    }
    let Some(expires_on) = &body.expires_on else {
        bail!("IMDS token response has neither expires_in nor expires_on");
    };
    let expires_on = UNIX_EPOCH + Duration::from_secs(expires_on.value("expires_on")?);
    Ok(expires_on.duration_since(now).unwrap_or_default())
}

/// `": <error>: <description>"` of an IMDS error body, cut short; empty when there is none.
fn error_detail(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorResponse {
        error: Option<String>,
        error_description: Option<String>,
    }
    let Ok(parsed) = serde_json::from_slice::<ErrorResponse>(body) else {
        return String::new();
    };
    [parsed.error, parsed.error_description]
        .into_iter()
        .flatten()
        .map(|text| printable_prefix(&text))
        .map(|text| format!(": {text}"))
        .collect()
}

/// The first line of `text`, at most [`MAX_DESCRIPTION`] characters: an error body goes into
/// the journal and must not be able to forge lines there.
fn printable_prefix(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DESCRIPTION)
        .collect()
}

/// A token in use, with the two moments that matter, measured on the monotonic clock from when
/// it was asked for (so they are early, never late).
#[derive(Debug)]
pub struct Cached {
    token: BearerToken,
    refresh_at: Instant,
    expires_at: Instant,
}

impl Cached {
    pub fn new(token: ImdsToken, asked_at: Instant) -> Cached {
        let margin = REFRESH_MARGIN.min(token.lifetime / 2);
        Cached {
            token: token.token,
            refresh_at: asked_at + (token.lifetime - margin),
            expires_at: asked_at + token.lifetime,
        }
    }

    pub fn token(&self) -> &BearerToken {
        &self.token
    }

    /// Good to use without asking for a new one.
    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }

    /// Still accepted by the service: it serves while a renewal fails.
    pub fn is_valid(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT: &str = include_str!(
        "../../../shared/contracts/examples/entra/imds-managed-identity-token-response.json"
    );

    fn response(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    /// The contract's `expires_on`, as our clock at the time the example was issued.
    fn issued() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_506_484_173 - 3_599)
    }

    #[test]
    fn parses_the_contract_example_with_string_numbers() {
        let token = parse_token_response(&response(200, CONTRACT), issued()).unwrap();
        assert_eq!(token.token, BearerToken::new("eyJ0eXAi...").unwrap());
        assert_eq!(token.lifetime, Duration::from_secs(3599));
    }

    #[test]
    fn takes_numbers_and_falls_back_to_expires_on() {
        let numbers = r#"{"access_token":"a.b.c","expires_in":60,"token_type":"Bearer"}"#;
        let token = parse_token_response(&response(200, numbers), issued()).unwrap();
        assert_eq!(token.lifetime, Duration::from_secs(60));
        let absolute = r#"{"access_token":"a.b.c","expires_on":"1506484173"}"#;
        let token = parse_token_response(&response(200, absolute), issued()).unwrap();
        assert_eq!(token.lifetime, Duration::from_secs(3599));
    }

    #[test]
    fn refuses_odd_answers_without_repeating_the_token() {
        let cases = [
            r#"{"access_token":"secret-token"}"#,
            r#"{"access_token":"secret-token","expires_in":"soon"}"#,
            r#"{"access_token":"secret-token","expires_in":"1","token_type":"pop"}"#,
            r#"{"access_token":"secret token\n","expires_in":"1"}"#,
            r#"{"access_token":["secret-token"],"expires_in":"1"}"#,
            "secret-token",
        ];
        for body in cases {
            let error = parse_token_response(&response(200, body), issued()).unwrap_err();
            let shown = format!("{error:#}");
            assert!(!shown.contains("secret"), "{shown}");
        }
    }

    #[test]
    fn errors_say_what_imds_said() {
        let body =
            r#"{"error":"invalid_request","error_description":"Identity not found\nforged line"}"#;
        let error = parse_token_response(&response(400, body), issued()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "IMDS token request answered 400 Bad Request: invalid_request: Identity not found"
        );
        let error = parse_token_response(&response(410, "gone"), issued()).unwrap_err();
        assert_eq!(error.to_string(), "IMDS token request answered 410 Gone");
    }

    #[test]
    fn the_request_asks_for_a_storage_token_with_the_metadata_header() {
        let request = token_request("http://169.254.169.254/").unwrap();
        assert_eq!(request.method(), "GET");
        assert_eq!(request.headers()["metadata"], "true");
        let query = request.uri().query().unwrap();
        let resource = query.split_once("&resource=").unwrap().1;
        let decoded = resource.replace("%3A", ":").replace("%2F", "/");
        assert_eq!(decoded, heimdall_azure_storage::STORAGE_RESOURCE);
        assert_eq!(
            request.uri().path(),
            "/metadata/identity/oauth2/token",
            "{}",
            request.uri()
        );
        assert!(query.starts_with("api-version=2018-02-01&"));
        assert!(token_request("not a url").is_err());
    }

    #[test]
    fn renews_minutes_before_expiry_and_half_way_for_short_tokens() {
        let asked = Instant::now();
        let token = |seconds| ImdsToken {
            token: BearerToken::new("t").unwrap(),
            lifetime: Duration::from_secs(seconds),
        };
        let hour = Cached::new(token(3600), asked);
        assert!(hour.is_fresh(asked + Duration::from_secs(3600 - 301)));
        assert!(!hour.is_fresh(asked + Duration::from_secs(3600 - 300)));
        assert!(hour.is_valid(asked + Duration::from_secs(3599)));
        assert!(!hour.is_valid(asked + Duration::from_secs(3600)));
        let short = Cached::new(token(60), asked);
        assert!(short.is_fresh(asked + Duration::from_secs(29)));
        assert!(!short.is_fresh(asked + Duration::from_secs(30)));
        let expired = Cached::new(token(0), asked);
        assert!(!expired.is_fresh(asked) && !expired.is_valid(asked));
    }
}
