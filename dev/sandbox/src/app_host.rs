//! What runs the app's components in the sandbox: our local host in-process, or real Spin
//! (`spin up` as a child process) when it is installed. Either way the sandbox sends the tick
//! itself over HTTP, as a scheduler does (a cron job on SpinKube, `spin aka cron` on Akamai).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use heimdall_spin_host::{HostConfig, RunningHost};
use tokio::task::JoinHandle;

use crate::client::HttpClient;
use crate::spin::{Spin, SpinUp};

/// Which host runs the components.
#[derive(Clone, Debug, Default)]
pub enum HostKind {
    /// `heimdall-spin-host`, in this process.
    #[default]
    Local,
    /// Real Spin: `spin up` with the app that `spin build` built.
    Spin(Spin),
}

impl HostKind {
    /// Real Spin when it is installed, our host otherwise.
    pub fn best() -> anyhow::Result<HostKind> {
        Ok(Spin::find()?.map_or(HostKind::Local, HostKind::Spin))
    }

    /// How the host is named to people.
    pub fn describe(&self) -> String {
        match self {
            HostKind::Local => "the local Spin host".into(),
            HostKind::Spin(spin) => format!("Spin {} ({})", spin.version, spin.program.display()),
        }
    }
}

/// The host a person asks for on a command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum HostChoice {
    /// Spin when it is installed, the local host otherwise.
    Auto,
    /// The local host, `dev/spin-host`.
    Local,
    /// Real Spin (`HEIMDALL_SPIN`, or `spin` on `PATH`); an error where there is none.
    Spin,
}

impl HostChoice {
    pub fn kind(self) -> anyhow::Result<HostKind> {
        match self {
            HostChoice::Auto => HostKind::best(),
            HostChoice::Local => Ok(HostKind::Local),
            HostChoice::Spin => match Spin::find()? {
                Some(spin) => Ok(HostKind::Spin(spin)),
                None => anyhow::bail!(
                    "no Spin found: install Spin 3 on PATH or set HEIMDALL_SPIN to its binary"
                ),
            },
        }
    }
}

/// What a host needs to run the app on loopback.
pub struct AppConfig {
    pub listen: SocketAddr,
    /// The application variables, by their `spin.toml` names.
    pub variables: HashMap<String, String>,
    /// Where the components' output goes (`None`: this process's stderr).
    pub component_log: Option<PathBuf>,
    pub tick: Tick,
}

/// The scheduler's `POST /reactions/tick`, with the app's secret as a bearer token.
pub struct Tick {
    pub every: Duration,
    pub secret: String,
}

/// The app, running, and its scheduler.
pub struct AppHost {
    addr: SocketAddr,
    host: Running,
    tick: JoinHandle<()>,
}

enum Running {
    Local(RunningHost),
    Spin(SpinUp),
}

impl AppHost {
    pub async fn start(kind: &HostKind, config: AppConfig) -> anyhow::Result<AppHost> {
        let manifest = crate::repo_root().join("spin.toml");
        let host = match kind {
            HostKind::Local => Running::Local(
                heimdall_spin_host::start(HostConfig {
                    manifest,
                    wasm_dir: Some(crate::wasm_dir()?),
                    listen: config.listen,
                    variables: config.variables,
                    tick: None,
                    log_file: config.component_log,
                })
                .await
                .context("starting the local Spin host")?,
            ),
            HostKind::Spin(spin) => Running::Spin(
                spin.up(
                    &manifest,
                    config.listen,
                    &config.variables,
                    config.component_log,
                )
                .await
                .context("starting `spin up`")?,
            ),
        };
        let addr = match &host {
            Running::Local(local) => local.addr(),
            Running::Spin(_) => config.listen,
        };
        let tick = tokio::spawn(send_ticks(addr, config.tick));
        Ok(AppHost { addr, host, tick })
    }

    /// Where the app listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the ticks, then the host, letting the calls in flight finish.
    pub async fn shutdown(self) {
        self.tick.abort();
        match self.host {
            Running::Local(local) => local.shutdown().await,
            Running::Spin(spin) => spin.stop().await,
        }
    }
}

/// Ticks every `tick.every`, the first after one interval. A failed tick is reported and the
/// next one comes anyway, as with a real scheduler.
async fn send_ticks(addr: SocketAddr, tick: Tick) {
    let http = HttpClient::default();
    let start = tokio::time::Instant::now() + tick.every;
    let mut interval = tokio::time::interval_at(start, tick.every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let request = http::Request::post(format!("http://{addr}/reactions/tick"))
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", tick.secret),
            )
            .body(Vec::new());
        let sent = match request {
            Ok(request) => http.send(request).await,
            Err(e) => Err(e.into()),
        };
        match sent {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => eprintln!("sandbox: the tick was answered {}", response.status()),
            Err(e) => eprintln!("sandbox: the tick failed: {e:#}"),
        }
    }
}
