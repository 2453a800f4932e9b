//! The agent's configuration: command-line flags, each also read from a `HEIMDALL_*` environment
//! variable (the systemd unit sets them in an environment file; see `agent/README.md`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{CommandFactory, Parser, ValueEnum};

use crate::follow::LogSource;

pub const DEFAULT_QUEUE: &str = heimdall_events::queues::EVENTS;
pub const DEFAULT_IMDS: &str = "http://169.254.169.254";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/heimdall-agent";
pub const DEFAULT_STOP_COMMAND: &str = "docker stop valheim";

/// The Heimdall agent on the game VM: follows the Valheim log and reports what happens to the
/// app's queue; saves the world before a spot eviction and on the app's "save and stop".
#[derive(Parser, Clone, Debug)]
#[command(name = "heimdall-agent", version)]
pub struct Args {
    /// The game server this VM runs (the state's partition key in the app).
    #[arg(long, env = "HEIMDALL_SERVER_ID")]
    pub server_id: String,
    /// Queue service origin: https://<account>.queue.core.windows.net, or Azurite's.
    #[arg(long, env = "HEIMDALL_QUEUE_ENDPOINT")]
    pub queue_endpoint: String,
    /// The queue that game events are put on.
    #[arg(long, env = "HEIMDALL_QUEUE_NAME", default_value = DEFAULT_QUEUE)]
    pub queue_name: String,
    /// The queue of control messages for this VM ("save and stop"); unset: none are read.
    #[arg(long, env = "HEIMDALL_CONTROL_QUEUE")]
    pub control_queue: Option<String>,
    /// How often the control queue is looked at, in milliseconds.
    #[arg(long, env = "HEIMDALL_CONTROL_POLL_MS", default_value_t = 2000)]
    pub control_poll_ms: u64,
    /// The storage account of the queues.
    #[arg(long, env = "HEIMDALL_STORAGE_ACCOUNT")]
    pub storage_account: String,
    /// How queue requests are authorized. Unset: shared-key when a storage key is given,
    /// otherwise the VM's managed identity.
    #[arg(long, env = "HEIMDALL_QUEUE_AUTH", value_enum)]
    pub queue_auth: Option<AuthChoice>,
    /// Secret: the account key (Base64) for shared-key signing.
    #[arg(long, env = "HEIMDALL_STORAGE_KEY", hide_env_values = true)]
    pub storage_key: Option<String>,
    /// The app's kick route; unset: the scheduled tick picks events up.
    #[arg(long, env = "HEIMDALL_KICK_URL")]
    pub kick_url: Option<String>,
    /// Secret: the bearer for the kick route.
    #[arg(long, env = "HEIMDALL_APP_SECRET", hide_env_values = true)]
    pub app_secret: Option<String>,
    /// A log file to follow like `tail -F`.
    #[arg(long, env = "HEIMDALL_LOG_FILE", conflicts_with = "log_command")]
    pub log_file: Option<PathBuf>,
    /// Read the log file from its start (a restart rereads it; positions keep events from
    /// being sent twice). Otherwise only what is appended.
    #[arg(long, env = "HEIMDALL_LOG_FROM_START", value_parser = clap::builder::BoolishValueParser::new())]
    pub log_from_start: bool,
    /// A shell command whose output is the game log, restarted when it ends. Its lines should
    /// carry Docker's timestamps (`docker logs -f --timestamps valheim`): they are the lines'
    /// places in the log, from which event ids are made.
    #[arg(long, env = "HEIMDALL_LOG_COMMAND")]
    pub log_command: Option<String>,
    /// The shell command that stops the game gracefully (it saves the world on SIGTERM).
    #[arg(long, env = "HEIMDALL_STOP_COMMAND", default_value = DEFAULT_STOP_COMMAND)]
    pub stop_command: String,
    /// How long the stop command may take before the stop is given up, in seconds.
    #[arg(long, env = "HEIMDALL_STOP_TIMEOUT_SECONDS", default_value_t = 150)]
    pub stop_timeout_seconds: u64,
    /// How often the agent says it is alive (with who is online), in seconds.
    #[arg(long, env = "HEIMDALL_HEARTBEAT_SECONDS", default_value_t = 300)]
    pub heartbeat_seconds: u64,
    /// Watch Azure Scheduled Events (spot eviction, maintenance) and save before them.
    #[arg(
        long,
        env = "HEIMDALL_SCHEDULED_EVENTS",
        value_enum,
        default_value = "on"
    )]
    pub scheduled_events: Switch,
    /// The address players join; otherwise asked of the instance metadata service.
    #[arg(long, env = "HEIMDALL_PUBLIC_IP")]
    pub public_ip: Option<String>,
    /// The VM's name; otherwise asked of the instance metadata service.
    #[arg(long, env = "HEIMDALL_VM_NAME")]
    pub vm_name: Option<String>,
    /// The instance metadata service (names, tokens, Scheduled Events).
    #[arg(long, env = "HEIMDALL_IMDS_ENDPOINT", default_value = DEFAULT_IMDS)]
    pub imds_endpoint: String,
    /// Where the agent keeps its spool and its place in the log.
    #[arg(long, env = "HEIMDALL_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthChoice {
    ManagedIdentity,
    SharedKey,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    On,
    Off,
}

/// The environment variables the agent reads, from its flag definitions: the one list that the
/// VM's environment file is checked against.
pub fn env_vars() -> Vec<String> {
    Args::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .collect()
}

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

/// Everything the agent needs, checked. Fields are public so that tests can build one in
/// process; `Debug` never shows the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentConfig {
    pub server_id: String,
    pub queue_endpoint: String,
    pub queue_name: String,
    pub control_queue: Option<String>,
    pub control_poll: Duration,
    pub storage_account: String,
    pub queue_auth: QueueAuth,
    /// The reactions kick route; `None` leaves the work to the scheduled tick.
    pub kick_url: Option<String>,
    /// Bearer token for the kick. Secret.
    pub app_secret: String,
    pub log_source: LogSource,
    pub stop_command: String,
    pub stop_timeout: Duration,
    pub heartbeat: Duration,
    pub scheduled_events: bool,
    /// Known address and name; what is `None` is asked of the instance metadata service.
    pub public_ip: Option<String>,
    pub vm_name: Option<String>,
    pub imds_endpoint: String,
    pub state_dir: PathBuf,
}

impl AgentConfig {
    /// Checks what the flags cannot check one by one.
    pub fn from_args(args: Args) -> anyhow::Result<AgentConfig> {
        let non_empty = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let kick_url = non_empty(args.kick_url);
        let app_secret = non_empty(args.app_secret).unwrap_or_default();
        if kick_url.is_some() && app_secret.is_empty() {
            bail!("HEIMDALL_KICK_URL is set but HEIMDALL_APP_SECRET is not");
        }
        let queue_auth = queue_auth(args.queue_auth, non_empty(args.storage_key))?;
        if queue_auth == QueueAuth::ManagedIdentity {
            check_token_transport(&args.queue_endpoint)?;
        }
        let log_source = match (args.log_file, non_empty(args.log_command)) {
            (Some(path), None) => LogSource::File {
                path,
                from_start: args.log_from_start,
            },
            (None, Some(command)) => LogSource::Command(command),
            (Some(_), Some(_)) => bail!("set HEIMDALL_LOG_FILE or HEIMDALL_LOG_COMMAND, not both"),
            (None, None) => bail!("set HEIMDALL_LOG_FILE or HEIMDALL_LOG_COMMAND"),
        };
        if args.stop_command.trim().is_empty() {
            bail!("HEIMDALL_STOP_COMMAND is empty");
        }
        Ok(AgentConfig {
            server_id: args.server_id,
            queue_endpoint: args.queue_endpoint,
            queue_name: args.queue_name,
            control_queue: non_empty(args.control_queue),
            control_poll: Duration::from_millis(args.control_poll_ms.max(10)),
            storage_account: args.storage_account,
            queue_auth,
            kick_url,
            app_secret,
            log_source,
            stop_command: args.stop_command,
            stop_timeout: Duration::from_secs(args.stop_timeout_seconds),
            heartbeat: Duration::from_secs(args.heartbeat_seconds.max(1)),
            scheduled_events: args.scheduled_events == Switch::On,
            public_ip: non_empty(args.public_ip),
            vm_name: non_empty(args.vm_name),
            imds_endpoint: args.imds_endpoint,
            state_dir: args.state_dir,
        })
    }

    /// Where unsent envelopes wait.
    pub fn spool_dir(&self) -> PathBuf {
        self.state_dir.join("spool")
    }
}

/// An explicit choice wins over a stray key, so that the VM never falls back to one.
fn queue_auth(choice: Option<AuthChoice>, key: Option<String>) -> anyhow::Result<QueueAuth> {
    match (choice, key) {
        (Some(AuthChoice::ManagedIdentity) | None, None) => Ok(QueueAuth::ManagedIdentity),
        (Some(AuthChoice::ManagedIdentity), Some(_)) => Ok(QueueAuth::ManagedIdentity),
        (Some(AuthChoice::SharedKey) | None, Some(key)) => Ok(QueueAuth::SharedKey { key }),
        (Some(AuthChoice::SharedKey), None) => {
            bail!("HEIMDALL_QUEUE_AUTH=shared-key needs HEIMDALL_STORAGE_KEY")
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

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("server_id", &self.server_id)
            .field("queue_endpoint", &self.queue_endpoint)
            .field("queue_name", &self.queue_name)
            .field("control_queue", &self.control_queue)
            .field("storage_account", &self.storage_account)
            .field("queue_auth", &self.queue_auth)
            .field("kick_url", &self.kick_url)
            .field("app_secret", &"<redacted>")
            .field("log_source", &self.log_source)
            .field("stop_command", &self.stop_command)
            .field("scheduled_events", &self.scheduled_events)
            .field("public_ip", &self.public_ip)
            .field("vm_name", &self.vm_name)
            .field("imds_endpoint", &self.imds_endpoint)
            .field("state_dir", &self.state_dir)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &[&str] = &[
        "heimdall-agent",
        "--server-id",
        "vanaheim",
        "--queue-endpoint",
        "http://127.0.0.1:10001",
        "--storage-account",
        "devstoreaccount1",
        "--kick-url",
        "http://127.0.0.1:3000/reactions/kick",
        "--app-secret",
        "app-secret-value",
    ];

    fn config(extra: &[&str]) -> anyhow::Result<AgentConfig> {
        let args = Args::try_parse_from(BASE.iter().chain(extra))?;
        AgentConfig::from_args(args)
    }

    const KEY: &[&str] = &["--storage-key", "c2VjcmV0LWtleQ=="];

    #[test]
    fn reads_a_full_configuration_with_defaults() {
        let config = config(&[
            "--storage-key",
            "c2VjcmV0LWtleQ==",
            "--log-file",
            "/var/log/valheim.log",
            "--log-from-start",
        ])
        .unwrap();
        assert_eq!(config.queue_name, "events");
        assert_eq!(config.imds_endpoint, DEFAULT_IMDS);
        assert_eq!(config.stop_command, DEFAULT_STOP_COMMAND);
        assert_eq!(config.heartbeat, Duration::from_secs(300));
        assert!(config.scheduled_events);
        assert_eq!(config.control_queue, None);
        assert_eq!(
            config.spool_dir(),
            PathBuf::from(DEFAULT_STATE_DIR).join("spool")
        );
        assert_eq!(
            config.log_source,
            LogSource::File {
                path: "/var/log/valheim.log".into(),
                from_start: true
            }
        );
    }

    #[test]
    fn needs_exactly_one_log_source() {
        assert!(config(KEY).is_err());
        let both = [
            KEY,
            &[
                "--log-file",
                "/x",
                "--log-command",
                "docker logs -f valheim",
            ],
        ]
        .concat();
        assert!(config(&both).is_err());
    }

    #[test]
    fn a_kick_needs_the_app_secret() {
        let args = Args::try_parse_from([
            "heimdall-agent",
            "--server-id",
            "v",
            "--queue-endpoint",
            "http://127.0.0.1:1",
            "--storage-account",
            "a",
            "--kick-url",
            "http://127.0.0.1:3000/reactions/kick",
            "--log-command",
            "cat",
        ])
        .unwrap();
        let error = AgentConfig::from_args(args).unwrap_err().to_string();
        assert!(error.contains("HEIMDALL_APP_SECRET"));
    }

    #[test]
    fn chooses_the_queue_auth() {
        let cat = ["--log-command", "cat"];
        let key = QueueAuth::SharedKey {
            key: "c2VjcmV0LWtleQ==".into(),
        };
        assert_eq!(config(&[KEY, &cat].concat()).unwrap().queue_auth, key);
        assert_eq!(config(&cat).unwrap().queue_auth, QueueAuth::ManagedIdentity);
        let explicit = [KEY, &cat, &["--queue-auth", "managed-identity"]].concat();
        assert_eq!(
            config(&explicit).unwrap().queue_auth,
            QueueAuth::ManagedIdentity
        );
        assert!(config(&[&cat[..], &["--queue-auth", "shared-key"]].concat()).is_err());
        assert!(config(&[&cat[..], &["--queue-auth", "sas"]].concat()).is_err());
    }

    #[test]
    fn tokens_go_over_https_or_loopback_only() {
        let args = |endpoint: &str| {
            Args::try_parse_from([
                "heimdall-agent",
                "--server-id",
                "v",
                "--queue-endpoint",
                endpoint,
                "--storage-account",
                "acct",
                "--log-command",
                "cat",
            ])
            .unwrap()
        };
        assert!(AgentConfig::from_args(args("http://127.0.0.1:10001")).is_ok());
        assert!(AgentConfig::from_args(args("https://acct.queue.core.windows.net")).is_ok());
        let error = AgentConfig::from_args(args("http://acct.queue.core.windows.net"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("https"), "{error}");
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!(
            "{:?}",
            config(&[KEY, &["--log-command", "cat"]].concat()).unwrap()
        );
        assert!(!shown.contains("c2VjcmV0LWtleQ=="));
        assert!(!shown.contains("app-secret-value"));
    }

    #[test]
    fn every_flag_has_its_environment_variable() {
        let vars = env_vars();
        assert_eq!(vars.len(), Args::command().get_arguments().count());
        assert!(vars.iter().all(|v| v.starts_with("HEIMDALL_")));
        assert!(vars.contains(&"HEIMDALL_CONTROL_QUEUE".to_owned()));
        assert!(vars.contains(&"HEIMDALL_STOP_COMMAND".to_owned()));
    }
}
