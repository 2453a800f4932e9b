//! The VM's name and public address: from the configuration, else from Azure's instance
//! metadata service (IMDS).

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{bail, Context as _};
use heimdall_events::VmUp;

use crate::backoff::{sleep_unless_stopped, Backoff};
use crate::config::AgentConfig;
use crate::http::Http;
use crate::log;

const NAME_PATH: &str = "/metadata/instance/compute/name?api-version=2021-02-01&format=text";
const PUBLIC_IP_PATH: &str = "/metadata/instance/network/interface/0/ipv4/ipAddress/0/publicIpAddress?api-version=2021-02-01&format=text";

/// What goes into `VmUp`, asking IMDS for what the configuration leaves out and retrying until
/// it answers; `None` when `stop` was set first.
pub fn vm_up(config: &AgentConfig, http: &Http, stop: &AtomicBool) -> Option<VmUp> {
    let vm_name = known_or_asked(&config.vm_name, config, http, NAME_PATH, stop)?;
    let public_ip = known_or_asked(&config.public_ip, config, http, PUBLIC_IP_PATH, stop)?;
    Some(VmUp { vm_name, public_ip })
}

fn known_or_asked(
    known: &Option<String>,
    config: &AgentConfig,
    http: &Http,
    path: &str,
    stop: &AtomicBool,
) -> Option<String> {
    if let Some(value) = known {
        return Some(value.clone());
    }
    let url = format!("{}{path}", config.imds_endpoint.trim_end_matches('/'));
    let mut retry = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        match ask(http, &url) {
            Ok(value) => return Some(value),
            Err(error) => {
                let delay = retry.next_delay();
                log(&format!(
                    "instance metadata: {error:#}; retrying in {delay:?}"
                ));
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
