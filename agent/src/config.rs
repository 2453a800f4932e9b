//! The agent's configuration, read from environment variables (see `agent/README.md`).

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Context as _};

use crate::follow::LogSource;

pub const DEFAULT_QUEUE: &str = "events";
pub const DEFAULT_IMDS: &str = "http://169.254.169.254";
pub const DEFAULT_SPOOL: &str = "/var/lib/heimdall-agent/spool";

/// How the agent authorizes its queue requests.
#[derive(Clone, PartialEq, Eq)]
pub enum QueueAuth {
    /// SharedKey with the account key (Base64). Secret. Azurite and the sandbox use this.
    SharedKey { key: String },
    /// Entra access tokens for `https://storage.azure.com/` from IMDS, issued to the VM's
    /// managed identity: the VM on Azure holds no storage key.
    ManagedIdentity,
}

impl fmt::Debug for QueueAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueAuth::SharedKey { .. } => f.write_str("SharedKey { key: <redacted> }"),
            QueueAuth::ManagedIdentity => f.write_str("ManagedIdentity"),
        }
    }
}

/// Everything the agent needs. Fields are public so that tests and the sandbox can build one in
/// process; `Debug` never shows the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The game server this VM runs (the state's partition key).
    pub server_id: String,
    /// Queue service origin: `https://<account>.queue.core.windows.net` or Azurite's.
    pub queue_endpoint: String,
    pub queue_name: String,
    pub storage_account: String,
    pub queue_auth: QueueAuth,
    /// The reactions kick route; `None` leaves the work to the scheduled tick.
    pub kick_url: Option<String>,
    /// Bearer token for the kick. Secret.
    pub app_secret: String,
    pub log_source: LogSource,
    /// Known address and name; what is `None` is asked of the instance metadata service.
    pub public_ip: Option<String>,
    pub vm_name: Option<String>,
    pub imds_endpoint: String,
    pub spool_dir: PathBuf,
}

impl AgentConfig {
    /// Reads the `HEIMDALL_*` variables of the process environment.
    pub fn from_env() -> anyhow::Result<AgentConfig> {
        AgentConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (a variable that is empty counts as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<AgentConfig> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let require = |name: &str| get(name).with_context(|| format!("{name} is not set"));
        let kick_url = get("HEIMDALL_KICK_URL");
        let app_secret = get("HEIMDALL_APP_SECRET").unwrap_or_default();
        if kick_url.is_some() && app_secret.is_empty() {
            bail!("HEIMDALL_KICK_URL is set but HEIMDALL_APP_SECRET is not");
        }
        let queue_endpoint = require("HEIMDALL_QUEUE_ENDPOINT")?;
        let queue_auth = queue_auth(&get)?;
        if queue_auth == QueueAuth::ManagedIdentity {
            check_token_transport(&queue_endpoint)?;
        }
        Ok(AgentConfig {
            server_id: require("HEIMDALL_SERVER_ID")?,
            queue_endpoint,
            queue_name: get("HEIMDALL_QUEUE_NAME").unwrap_or_else(|| DEFAULT_QUEUE.into()),
            storage_account: require("HEIMDALL_STORAGE_ACCOUNT")?,
            queue_auth,
            kick_url,
            app_secret,
            log_source: log_source(&get)?,
            public_ip: get("HEIMDALL_PUBLIC_IP"),
            vm_name: get("HEIMDALL_VM_NAME"),
            imds_endpoint: get("HEIMDALL_IMDS_ENDPOINT").unwrap_or_else(|| DEFAULT_IMDS.into()),
            spool_dir: get("HEIMDALL_SPOOL_DIR")
                .unwrap_or_else(|| DEFAULT_SPOOL.into())
                .into(),
        })
    }
}

/// `HEIMDALL_QUEUE_AUTH` when set; otherwise SharedKey when there is a key and the managed
/// identity when there is none (the VM on Azure is given no key).
fn queue_auth(get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<QueueAuth> {
    let key = get("HEIMDALL_STORAGE_KEY");
    match (get("HEIMDALL_QUEUE_AUTH").as_deref(), key) {
        (Some("managed-identity") | None, None) => Ok(QueueAuth::ManagedIdentity),
        // An explicit choice wins over a stray key, so that the VM never falls back to one.
        (Some("managed-identity"), Some(_)) => Ok(QueueAuth::ManagedIdentity),
        (Some("shared-key") | None, Some(key)) => Ok(QueueAuth::SharedKey { key }),
        (Some("shared-key"), None) => {
            bail!("HEIMDALL_QUEUE_AUTH=shared-key needs HEIMDALL_STORAGE_KEY")
        }
        (Some(other), _) => {
            bail!("HEIMDALL_QUEUE_AUTH must be managed-identity or shared-key, not {other:?}")
        }
    }
}

/// Azure takes bearer tokens over HTTPS only, and a token sent in clear could be replayed:
/// plain HTTP is allowed for a loopback stand-in (tests, local runs) and nowhere else.
fn check_token_transport(endpoint: &str) -> anyhow::Result<()> {
    let uri: http::Uri = endpoint
        .parse()
        .with_context(|| format!("HEIMDALL_QUEUE_ENDPOINT {endpoint:?} is not a URL"))?;
    let loopback = matches!(uri.host(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if uri.scheme_str() == Some("https") || loopback {
        return Ok(());
    }
    bail!("HEIMDALL_QUEUE_ENDPOINT must be https:// for managed-identity tokens")
}

fn log_source(get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<LogSource> {
    match (get("HEIMDALL_LOG_FILE"), get("HEIMDALL_LOG_COMMAND")) {
        (Some(path), None) => Ok(LogSource::File {
            path: path.into(),
            from_start: get("HEIMDALL_LOG_FROM_START").as_deref() == Some("1"),
        }),
        (None, Some(command)) => Ok(LogSource::Command(command)),
        (Some(_), Some(_)) => bail!("set HEIMDALL_LOG_FILE or HEIMDALL_LOG_COMMAND, not both"),
        (None, None) => bail!("set HEIMDALL_LOG_FILE or HEIMDALL_LOG_COMMAND"),
    }
}

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("server_id", &self.server_id)
            .field("queue_endpoint", &self.queue_endpoint)
            .field("queue_name", &self.queue_name)
            .field("storage_account", &self.storage_account)
            .field("queue_auth", &self.queue_auth)
            .field("kick_url", &self.kick_url)
            .field("app_secret", &"<redacted>")
            .field("log_source", &self.log_source)
            .field("public_ip", &self.public_ip)
            .field("vm_name", &self.vm_name)
            .field("imds_endpoint", &self.imds_endpoint)
            .field("spool_dir", &self.spool_dir)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<AgentConfig> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AgentConfig::from_lookup(|name| vars.get(name).cloned())
    }

    const BASE: &[(&str, &str)] = &[
        ("HEIMDALL_SERVER_ID", "vanaheim"),
        ("HEIMDALL_QUEUE_ENDPOINT", "http://127.0.0.1:10001"),
        ("HEIMDALL_STORAGE_ACCOUNT", "devstoreaccount1"),
        ("HEIMDALL_STORAGE_KEY", "c2VjcmV0LWtleQ=="),
        ("HEIMDALL_KICK_URL", "http://127.0.0.1:3000/reactions/kick"),
        ("HEIMDALL_APP_SECRET", "app-secret-value"),
    ];

    #[test]
    fn reads_a_full_configuration_with_defaults() {
        let mut vars = BASE.to_vec();
        vars.push(("HEIMDALL_LOG_FILE", "/var/log/valheim.log"));
        vars.push(("HEIMDALL_LOG_FROM_START", "1"));
        let config = config(&vars).unwrap();
        assert_eq!(config.queue_name, "events");
        assert_eq!(config.imds_endpoint, DEFAULT_IMDS);
        assert_eq!(
            config.log_source,
            LogSource::File {
                path: "/var/log/valheim.log".into(),
                from_start: true
            }
        );
        assert_eq!(config.public_ip, None);
    }

    #[test]
    fn needs_exactly_one_log_source() {
        assert!(config(BASE).is_err());
        let mut vars = BASE.to_vec();
        vars.push(("HEIMDALL_LOG_FILE", "/x"));
        vars.push(("HEIMDALL_LOG_COMMAND", "docker logs -f valheim"));
        assert!(config(&vars).is_err());
    }

    #[test]
    fn a_kick_needs_the_app_secret() {
        let vars: Vec<_> = BASE
            .iter()
            .copied()
            .filter(|(k, _)| *k != "HEIMDALL_APP_SECRET")
            .chain([("HEIMDALL_LOG_COMMAND", "cat")])
            .collect();
        let error = config(&vars).unwrap_err().to_string();
        assert!(error.contains("HEIMDALL_APP_SECRET"));
    }

    fn without(
        vars: &[(&'static str, &'static str)],
        name: &str,
    ) -> Vec<(&'static str, &'static str)> {
        vars.iter().copied().filter(|(k, _)| *k != name).collect()
    }

    #[test]
    fn chooses_the_queue_auth() {
        let mut vars = BASE.to_vec();
        vars.push(("HEIMDALL_LOG_COMMAND", "cat"));
        let key = QueueAuth::SharedKey {
            key: "c2VjcmV0LWtleQ==".into(),
        };
        assert_eq!(config(&vars).unwrap().queue_auth, key);
        let keyless = without(&vars, "HEIMDALL_STORAGE_KEY");
        assert_eq!(
            config(&keyless).unwrap().queue_auth,
            QueueAuth::ManagedIdentity
        );
        vars.push(("HEIMDALL_QUEUE_AUTH", "managed-identity"));
        assert_eq!(
            config(&vars).unwrap().queue_auth,
            QueueAuth::ManagedIdentity
        );
        let mut vars = keyless.clone();
        vars.push(("HEIMDALL_QUEUE_AUTH", "shared-key"));
        assert!(config(&vars).is_err());
        let mut vars = keyless;
        vars.push(("HEIMDALL_QUEUE_AUTH", "sas"));
        assert!(config(&vars).is_err());
    }

    #[test]
    fn tokens_go_over_https_or_loopback_only() {
        let mut vars = without(BASE, "HEIMDALL_STORAGE_KEY");
        vars.push(("HEIMDALL_LOG_COMMAND", "cat"));
        assert!(config(&vars).is_ok());
        let mut azure = without(&vars, "HEIMDALL_QUEUE_ENDPOINT");
        azure.push((
            "HEIMDALL_QUEUE_ENDPOINT",
            "https://acct.queue.core.windows.net",
        ));
        assert!(config(&azure).is_ok());
        let mut clear = without(&vars, "HEIMDALL_QUEUE_ENDPOINT");
        clear.push((
            "HEIMDALL_QUEUE_ENDPOINT",
            "http://acct.queue.core.windows.net",
        ));
        let error = config(&clear).unwrap_err().to_string();
        assert!(error.contains("https"), "{error}");
    }

    #[test]
    fn debug_hides_secrets() {
        let mut vars = BASE.to_vec();
        vars.push(("HEIMDALL_LOG_COMMAND", "cat"));
        let shown = format!("{:?}", config(&vars).unwrap());
        assert!(!shown.contains("c2VjcmV0LWtleQ=="));
        assert!(!shown.contains("app-secret-value"));
    }
}
