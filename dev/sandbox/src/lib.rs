//! The whole Heimdall loop on one machine: Azurite, the local Spin host running the real
//! `.wasm` components, the fakes of Azure Resource Manager, Entra, Discord and the VM's metadata
//! service, and on each simulated VM the real agent binary and a game process that prints a
//! recorded Valheim log. [`Sandbox::start`] brings it up on loopback; [`scenario`] plays Discord
//! evenings against it. The `heimdall-sandbox` binary and the end-to-end tests both use this.

pub mod app_host;
pub mod azurite;
pub mod client;
pub mod player;
pub mod ports;
pub mod proxy;
pub mod scenario;
pub mod spin;
pub mod status;
pub mod storage;
pub mod transcript;
pub mod vm;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use heimdall_fakes::{ArmFake, ArmFakeConfig, DiscordFake, DiscordFakeConfig, MetadataFake};

use crate::app_host::{AppConfig, AppHost, HostKind, Tick};
use crate::azurite::Azurite;
use crate::client::HttpClient;
use crate::player::Player;
use crate::ports::random_bytes;
use crate::proxy::{Proxy, StorageFaults};
use crate::status::StatusRecorder;
use crate::storage::Storage;
use crate::vm::{Vm, VmConfig};

pub const SERVER_ID: &str = "valheim";

/// How the sandbox runs. The defaults shorten every wait so that a scenario takes seconds
/// (production values in brackets); every step still happens.
#[derive(Clone, Debug)]
pub struct Options {
    /// How often the host ticks reactions [a minute].
    pub tick_every: Duration,
    pub boot_delay: Duration,
    pub polls_in_progress: u32,
    /// A start not ready within this long is given up [15 min].
    pub start_timeout: Duration,
    /// Nobody online this long stops the server; zero turns it off [20 min; off here unless a
    /// scenario wants it].
    pub idle: Duration,
    /// How long a stop waits for the save before scaling in anyway [3 min].
    pub save_timeout: Duration,
    /// Agent silence after which the VM is taken for lost [15 min].
    pub silence_timeout: Duration,
    /// How often reactions asks Azure whether the VM still exists [5 min].
    pub instance_check: Duration,
    /// How long reactions waits for Azure to take an evicted VM [10 min].
    pub eviction_wait: Duration,
    /// How often the agent says it is alive [5 min].
    pub heartbeat: Duration,
    /// The spot sizes to try, in order.
    pub vm_sizes: Vec<String>,
    /// A game that never saves or exits when asked to stop.
    pub game_hangs: bool,
    /// A game that loads forever.
    pub game_never_ready: bool,
    /// Trouble with the queues and the table (see [`proxy`]).
    pub storage_faults: StorageFaults,
    /// Where the components' log lines go (`None`: stderr, as in tests).
    pub component_log: Option<PathBuf>,
    /// What runs the components.
    pub host: HostKind,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tick_every: Duration::from_millis(250),
            boot_delay: Duration::from_millis(300),
            polls_in_progress: 1,
            start_timeout: Duration::from_secs(60),
            idle: Duration::ZERO,
            save_timeout: Duration::from_secs(3),
            silence_timeout: Duration::from_secs(20),
            instance_check: Duration::from_secs(2),
            eviction_wait: Duration::from_secs(10),
            heartbeat: Duration::from_secs(2),
            vm_sizes: vec!["Standard_D2as_v4".into(), "Standard_D2s_v3".into()],
            game_hangs: false,
            game_never_ready: false,
            storage_faults: StorageFaults::default(),
            component_log: None,
            host: HostKind::Local,
        }
    }
}

pub struct Sandbox {
    pub azurite: Azurite,
    pub storage: Storage,
    pub arm: ArmFake,
    pub discord: DiscordFake,
    pub metadata: Arc<MetadataFake>,
    pub host: AppHost,
    pub player: Player,
    pub vm: Vm,
    pub statuses: StatusRecorder,
    pub app_secret: String,
    /// In front of Azurite's queues and table when storage faults are asked for.
    proxies: Vec<Proxy>,
}

impl Sandbox {
    pub async fn start(options: Options) -> anyhow::Result<Sandbox> {
        let http = HttpClient::default();
        let azurite = Azurite::start().await.context("starting Azurite")?;
        let storage = Storage::new(&azurite, http.clone())?;
        storage.create_all().await?;
        let (queue_endpoint, table_endpoint, proxies) =
            storage_endpoints(&azurite, &storage, options.storage_faults).await?;
        let arm_config = ArmFakeConfig {
            boot_delay: options.boot_delay,
            polls_in_progress: options.polls_in_progress,
            vm_size: options
                .vm_sizes
                .first()
                .cloned()
                .unwrap_or_else(|| ArmFakeConfig::default().vm_size),
            ..ArmFakeConfig::default()
        };
        let arm = ArmFake::start(arm_config.clone()).await?;
        let discord_config = DiscordFakeConfig::default();
        let discord = DiscordFake::start(discord_config.clone()).await?;
        let metadata = Arc::new(MetadataFake::start().await?);
        // When an eviction or removal the metadata service announced starts, Azure takes the VM.
        let evict = arm.evictor();
        metadata.on_event_start(Arc::new(move |event_type: &str| {
            if matches!(event_type, "Preempt" | "Terminate") {
                evict();
            }
        }));
        let listen: SocketAddr = ([127, 0, 0, 1], ports::free_port()?).into();
        let app_secret = hex::encode(random_bytes::<24>());
        let player = Player::new(
            http.clone(),
            format!("http://{listen}/interactions"),
            discord_config.application_id.clone(),
        );
        let variables = HashMap::from([
            ("discord_public_key", player.public_key_hex()),
            (
                "discord_application_id",
                discord_config.application_id.clone(),
            ),
            ("discord_bot_token", discord_config.bot_token.clone()),
            ("discord_api", discord.origin()),
            ("entra_endpoint", arm.origin()),
            ("arm_endpoint", arm.origin()),
            ("storage_account", azurite.account.clone()),
            ("storage_key", azurite.key.clone()),
            ("queue_endpoint", queue_endpoint.clone()),
            ("table_endpoint", table_endpoint),
            ("app_secret", app_secret.clone()),
            ("server_id", SERVER_ID.to_owned()),
            ("start_timeout_minutes", minutes(options.start_timeout)),
            ("idle_minutes", minutes(options.idle)),
            ("save_timeout_minutes", minutes(options.save_timeout)),
            ("silence_timeout_minutes", minutes(options.silence_timeout)),
            ("instance_check_minutes", minutes(options.instance_check)),
            ("eviction_wait_minutes", minutes(options.eviction_wait)),
            ("vm_sizes", options.vm_sizes.join(",")),
            ("azure_tenant_id", arm_config.tenant_id.clone()),
            ("azure_client_id", arm_config.client_id.clone()),
            ("azure_client_secret", arm_config.client_secret.clone()),
            ("azure_subscription_id", arm_config.subscription_id.clone()),
            ("azure_resource_group", arm_config.resource_group.clone()),
            ("vmss_name", arm_config.vmss_name.clone()),
        ]);
        let app = AppConfig {
            listen,
            variables: variables
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            component_log: options.component_log.clone(),
            tick: Tick {
                every: options.tick_every,
                secret: app_secret.clone(),
            },
        };
        let host = AppHost::start(&options.host, app).await?;
        // As cloud-init writes it, except that Azurite takes SharedKey rather than tokens.
        let agent_env: HashMap<String, String> = [
            ("HEIMDALL_SERVER_ID", SERVER_ID.to_owned()),
            ("HEIMDALL_QUEUE_ENDPOINT", queue_endpoint),
            ("HEIMDALL_STORAGE_ACCOUNT", azurite.account.clone()),
            ("HEIMDALL_STORAGE_KEY", azurite.key.clone()),
            ("HEIMDALL_QUEUE_NAME", "events".to_owned()),
            ("HEIMDALL_CONTROL_QUEUE", "control".to_owned()),
            ("HEIMDALL_CONTROL_POLL_MS", "100".to_owned()),
            (
                "HEIMDALL_KICK_URL",
                format!("http://{listen}/reactions/kick"),
            ),
            ("HEIMDALL_APP_SECRET", app_secret.clone()),
            ("HEIMDALL_IMDS_ENDPOINT", metadata.origin()),
            ("HEIMDALL_HEARTBEAT_SECONDS", seconds(options.heartbeat)),
            ("HEIMDALL_STOP_TIMEOUT_SECONDS", "30".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let vm = Vm::watch(
            arm.lifecycle(),
            metadata.clone(),
            VmConfig {
                agent_env,
                game_hangs: options.game_hangs,
                game_never_ready: options.game_never_ready,
            },
        );
        let statuses = StatusRecorder::start(storage.clone(), SERVER_ID);
        Ok(Sandbox {
            azurite,
            storage,
            arm,
            discord,
            metadata,
            host,
            player,
            vm,
            statuses,
            app_secret,
            proxies,
        })
    }

    /// Stops everything it started, in reverse order.
    pub async fn shutdown(self) {
        self.statuses.stop().await;
        self.vm.stop().await;
        self.host.shutdown().await;
        if let Ok(metadata) = Arc::try_unwrap(self.metadata) {
            metadata.shutdown().await;
        }
        self.discord.shutdown().await;
        self.arm.shutdown().await;
        for proxy in self.proxies {
            proxy.stop().await;
        }
        self.azurite.stop().await;
    }
}

impl Sandbox {
    /// Races with the state entity that the storage proxy still has to win.
    pub fn state_conflicts_left(&self) -> u32 {
        self.proxies.iter().map(Proxy::conflicts_left).sum()
    }
}

/// Azurite's queue and table endpoints, or proxies in front of them that make the trouble
/// asked for.
async fn storage_endpoints(
    azurite: &Azurite,
    storage: &Storage,
    faults: StorageFaults,
) -> anyhow::Result<(String, String, Vec<Proxy>)> {
    if faults == StorageFaults::default() {
        return Ok((
            azurite.queue_endpoint.clone(),
            azurite.table_endpoint.clone(),
            Vec::new(),
        ));
    }
    // Each service gets its own trouble: messages are doubled on the queues, races happen on
    // the table.
    let queue_faults = StorageFaults {
        state_conflicts: 0,
        ..faults
    };
    let table_faults = StorageFaults {
        duplicate_messages: false,
        ..faults
    };
    let queues = Proxy::start(&azurite.queue_endpoint, storage.clone(), queue_faults).await?;
    let tables = Proxy::start(&azurite.table_endpoint, storage.clone(), table_faults).await?;
    Ok((queues.origin(), tables.origin(), vec![queues, tables]))
}

/// A duration as minutes, the unit of the app's timing variables (fractions allowed).
fn minutes(duration: Duration) -> String {
    format!("{}", duration.as_secs_f64() / 60.0)
}

/// A duration as a whole number of seconds (at least 1), the unit of the app's variables.
fn seconds(duration: Duration) -> String {
    duration.as_secs().max(1).to_string()
}

/// One of the workspace's binaries (`heimdall-agent`, `heimdall-fake-game`): beside the running
/// executable, or one folder up (tests run from `deps/`). `HEIMDALL_BIN_DIR` overrides.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("HEIMDALL_BIN_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::current_exe()?.parent() {
        dirs.push(dir.to_owned());
        dirs.extend(dir.parent().map(ToOwned::to_owned));
    }
    dirs.iter()
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .with_context(|| {
            format!("{name} is not built beside this program; build the workspace's binaries first (scripts/play and scripts/test do)")
        })
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the build scripts put the cache (`HEIMDALL_CACHE`, default `~/.cache/heimdall`).
pub fn cache_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("HEIMDALL_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home).join(".cache/heimdall")
}

/// The folder with the release components (`HEIMDALL_WASM_DIR`, or the cache's target folder).
pub(crate) fn wasm_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var("HEIMDALL_WASM_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => {
            let target = std::env::var("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|_| cache_dir().join("target"));
            target.join("wasm32-wasip2/component")
        }
    };
    for name in [
        "heimdall_interactions",
        "heimdall_reactions",
        "heimdall_scaler",
    ] {
        if !dir.join(format!("{name}.wasm")).exists() {
            bail!(
                "{name}.wasm is not in {}; build the components first (scripts/test and scripts/play do)",
                dir.display()
            );
        }
    }
    Ok(dir)
}
