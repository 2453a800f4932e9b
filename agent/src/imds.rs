//! What the agent asks Azure's instance metadata service (IMDS): the VM's name and public
//! address (unless configured), and Entra tokens for the queue (managed identity).

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _};
use heimdall_azure_storage::BearerToken;
use heimdall_events::VmUp;

use crate::backoff::{sleep_unless_stopped, Backoff};
use crate::config::AgentConfig;
use crate::http::Http;
use crate::token::{parse_token_response, token_request, Cached};

const NAME_PATH: &str = "/metadata/instance/compute/name?api-version=2021-02-01&format=text";
const PUBLIC_IP_PATH: &str = "/metadata/instance/network/interface/0/ipv4/ipAddress/0/publicIpAddress?api-version=2021-02-01&format=text";

/// What goes into `VmUp`: the VM's name, asked of IMDS (retried until it answers) unless
/// configured; `None` when `stop` was set first. The address is the configured one, or what IMDS
/// says at once: IMDS reports Basic public IPs only, so on a Standard IP it has none, and the
/// app takes the address from Azure Resource Manager instead. Nothing waits for it.
pub fn vm_up(config: &AgentConfig, http: &Http, stop: &AtomicBool) -> Option<VmUp> {
    let vm_name = match &config.vm_name {
        Some(name) => name.clone(),
        None => asked_until_answered(config, http, NAME_PATH, stop)?,
    };
    let public_ip = config
        .public_ip
        .clone()
        .or_else(|| ask(http, &url(config, PUBLIC_IP_PATH)).ok());
    Some(VmUp { vm_name, public_ip })
}

fn url(config: &AgentConfig, path: &str) -> String {
    format!("{}{path}", config.imds_endpoint.trim_end_matches('/'))
}

fn asked_until_answered(
    config: &AgentConfig,
    http: &Http,
    path: &str,
    stop: &AtomicBool,
) -> Option<String> {
    let url = url(config, path);
    let mut retry = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        match ask(http, &url) {
            Ok(value) => return Some(value),
            Err(error) => {
                let delay = retry.next_delay();
                tracing::warn!("instance metadata: {error:#}; retrying in {delay:?}");
                if !sleep_unless_stopped(stop, delay) {
                    return None;
                }
            }
        }
    }
}

fn ask(http: &Http, url: &str) -> anyhow::Result<String> {
    let request = http::Request::get(url)
        .header("Metadata", "true")
        .body(Vec::new())
        .context("IMDS URL is not valid")?;
    let response = http.send(request)?;
    let text = String::from_utf8_lossy(response.body()).trim().to_owned();
    if !response.status().is_success() {
        bail!("IMDS answered {}: {text}", response.status());
    }
    if text.is_empty() {
        bail!(
            "IMDS answered with nothing for {}",
            crate::http::without_query(url)
        );
    }
    Ok(text)
}

/// Storage tokens of the VM's managed identity: asked of IMDS when needed, kept until shortly
/// before they expire. Retries are the caller's (the sender's backoff); the spool keeps events.
pub struct TokenSource {
    imds_endpoint: String,
    cached: Option<Cached>,
}

impl TokenSource {
    pub fn new(imds_endpoint: &str) -> TokenSource {
        TokenSource {
            imds_endpoint: imds_endpoint.to_owned(),
            cached: None,
        }
    }

    /// The token to send now: the kept one while fresh, else a new one. While IMDS cannot give
    /// one (it answers 404/410 while updating, 429 when throttled), a token that has not expired
    /// yet still serves.
    pub fn current(&mut self, http: &Http) -> anyhow::Result<BearerToken> {
        let now = Instant::now();
        if let Some(cached) = self.cached.as_ref().filter(|c| c.is_fresh(now)) {
            return Ok(cached.token().clone());
        }
        let renewed = self.renew(http);
        match (renewed, &self.cached) {
            (Ok(token), _) => Ok(token),
            (Err(error), Some(cached)) if cached.is_valid(now) => {
                tracing::warn!(
                    "renewing the storage token: {error:#}; the current one still serves"
                );
                Ok(cached.token().clone())
            }
            (Err(error), _) => Err(error),
        }
    }

    /// A new token from IMDS, kept for the next calls.
    pub fn renew(&mut self, http: &Http) -> anyhow::Result<BearerToken> {
        let asked_at = Instant::now();
        let response = http.send(token_request(&self.imds_endpoint)?)?;
        let token = parse_token_response(&response, SystemTime::now())?;
        tracing::info!(
            valid_s = token.lifetime.as_secs(),
            "storage token from IMDS"
        );
        let cached = Cached::new(token, asked_at);
        let bearer = cached.token().clone();
        self.cached = Some(cached);
        Ok(bearer)
    }
}
