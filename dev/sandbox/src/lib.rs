//! The whole Heimdall loop on one machine: Azurite, the local Spin host running the real
//! `.wasm` components, the fakes of Azure Resource Manager, Entra and Discord, and the agent fed
//! with a recorded Valheim log. [`Sandbox::start`] brings it up on loopback; [`session::play`]
//! plays a Discord evening against it. The `heimdall-sandbox` binary and the end-to-end tests
//! both use this.

pub mod azurite;
pub mod client;
pub mod player;
pub mod ports;
pub mod session;
pub mod status;
pub mod storage;
pub mod transcript;
pub mod vm;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use heimdall_fakes::{ArmFake, ArmFakeConfig, DiscordFake, DiscordFakeConfig};
use heimdall_spin_host::{HostConfig, RunningHost, Tick};

use crate::azurite::Azurite;
use crate::client::HttpClient;
use crate::player::Player;
use crate::ports::random_bytes;
use crate::status::StatusRecorder;
use crate::storage::Storage;
use crate::vm::Vm;

pub const SERVER_ID: &str = "valheim";

/// How the sandbox runs; the defaults keep a session to a few seconds.
#[derive(Clone, Debug)]
pub struct Options {
    /// How often the host ticks reactions (a minute in production).
    pub tick_every: Duration,
    pub boot_delay: Duration,
    pub polls_in_progress: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tick_every: Duration::from_millis(250),
            boot_delay: Duration::from_millis(300),
            polls_in_progress: 2,
        }
    }
}

pub struct Sandbox {
    pub azurite: Azurite,
    pub storage: Storage,
    pub arm: ArmFake,
    pub discord: DiscordFake,
    pub host: RunningHost,
    pub player: Player,
    pub vm: Vm,
    pub statuses: StatusRecorder,
    pub app_secret: String,
}

impl Sandbox {
    pub async fn start(options: Options) -> anyhow::Result<Sandbox> {
        let http = HttpClient::default();
        let azurite = Azurite::start().await.context("starting Azurite")?;
        let storage = Storage::new(&azurite, http.clone())?;
        storage.create_all().await?;
        let arm_config = ArmFakeConfig {
            boot_delay: options.boot_delay,
            polls_in_progress: options.polls_in_progress,
            ..ArmFakeConfig::default()
        };
        let arm = ArmFake::start(arm_config.clone()).await?;
        let discord_config = DiscordFakeConfig::default();
        let discord = DiscordFake::start(discord_config.clone()).await?;
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
            ("queue_endpoint", azurite.queue_endpoint.clone()),
            ("table_endpoint", azurite.table_endpoint.clone()),
            ("app_secret", app_secret.clone()),
            ("server_id", SERVER_ID.to_owned()),
            ("azure_tenant_id", arm_config.tenant_id.clone()),
            ("azure_client_id", arm_config.client_id.clone()),
            ("azure_client_secret", arm_config.client_secret.clone()),
            ("azure_subscription_id", arm_config.subscription_id.clone()),
            ("azure_resource_group", arm_config.resource_group.clone()),
            ("vmss_name", arm_config.vmss_name.clone()),
        ]);
        let host = heimdall_spin_host::start(HostConfig {
            manifest: repo_root().join("spin.toml"),
            wasm_dir: Some(wasm_dir()?),
            listen,
            variables: variables
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            tick: Some(Tick {
                every: options.tick_every,
                path: "/reactions/tick".into(),
                bearer: app_secret.clone(),
            }),
        })
        .await
        .context("starting the local Spin host")?;
        let agent_env = HashMap::from([
            ("HEIMDALL_SERVER_ID".to_owned(), SERVER_ID.to_owned()),
            (
                "HEIMDALL_QUEUE_ENDPOINT".to_owned(),
                azurite.queue_endpoint.clone(),
            ),
            (
                "HEIMDALL_STORAGE_ACCOUNT".to_owned(),
                azurite.account.clone(),
            ),
            ("HEIMDALL_STORAGE_KEY".to_owned(), azurite.key.clone()),
            (
                "HEIMDALL_KICK_URL".to_owned(),
                format!("http://{listen}/reactions/kick"),
            ),
            ("HEIMDALL_APP_SECRET".to_owned(), app_secret.clone()),
        ]);
        let vm = Vm::watch(arm.lifecycle(), agent_env);
        let statuses = StatusRecorder::start(storage.clone(), SERVER_ID);
        Ok(Sandbox {
            azurite,
            storage,
            arm,
            discord,
            host,
            player,
            vm,
            statuses,
            app_secret,
        })
    }

    /// Stops everything it started, in reverse order.
    pub async fn shutdown(self) {
        self.statuses.stop().await;
        self.vm.stop().await;
        self.host.shutdown().await;
        self.discord.shutdown().await;
        self.arm.shutdown().await;
        self.azurite.stop().await;
    }
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
fn wasm_dir() -> anyhow::Result<PathBuf> {
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
