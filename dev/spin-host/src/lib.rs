//! A small local host, on wasmtime, that runs the app's real `.wasm` components the way
//! `spin up` does — for what this app uses: HTTP routes (private ones too), service chaining
//! through `http://<component>.spin.internal`, variables, `allowed_outbound_hosts`, and a fresh
//! instance per request. Development and tests only; deployments use real Spin.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use heimdall_spin_host::{start, HostConfig};
//! let host = start(HostConfig {
//!     manifest: "spin.toml".into(),
//!     wasm_dir: None,
//!     listen: "127.0.0.1:0".parse()?,
//!     variables: Default::default(),
//!     tick: None,
//!     log_file: None,
//! })
//! .await?;
//! println!("listening on http://{}", host.addr());
//! host.shutdown().await;
//! # Ok(()) }
//! ```

mod imports;
mod manifest;
mod outbound;
mod outgoing;
mod router;
mod runtime;
mod server;
mod variables;

pub use imports::{check as check_imports, unsupported as unsupported_imports};
pub use server::MAX_BODY_BYTES;

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to start the host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Path to `spin.toml`.
    pub manifest: PathBuf,
    /// When set, every component's `.wasm` is taken from here (by the file name of `source`).
    pub wasm_dir: Option<PathBuf>,
    /// Where to listen; port 0 picks a free one (see [`RunningHost::addr`]).
    pub listen: SocketAddr,
    /// Application variable values, overriding manifest defaults (like `SPIN_VARIABLE_*`).
    pub variables: HashMap<String, String>,
    /// Optional periodic self-request, like a cron scheduler.
    pub tick: Option<Tick>,
    /// Where the components' stdout and stderr go, appended (as `spin up --log-dir` keeps them
    /// in files); `None`: the host's own.
    pub log_file: Option<PathBuf>,
}

/// A periodic `POST <path>` with `Authorization: Bearer <bearer>` to the app itself.
#[derive(Debug, Clone)]
pub struct Tick {
    pub every: Duration,
    /// e.g. `/reactions/tick`
    pub path: String,
    pub bearer: String,
}

/// How long a stopping host waits for the guest calls still running.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// A started host. Dropping it stops the listener too; [`RunningHost::shutdown`] waits for it.
pub struct RunningHost {
    addr: SocketAddr,
    app: Arc<runtime::App>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    /// The scheduler's ticks, if any.
    tick: Option<JoinHandle<()>>,
    /// Lets running guests yield and meet their time limit; stops last.
    epoch: JoinHandle<()>,
}

impl RunningHost {
    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops in order: no new requests and no more ticks, then waits (up to
    /// [`SETTLE_LIMIT`]) for the guest calls already running, their work after the answer
    /// included, so that the services they talk to can be stopped after this without cutting
    /// any call short.
    pub async fn shutdown(mut self) {
        if let Some(tick) = self.tick.take() {
            tick.abort();
        }
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if !self.app.settle(SETTLE_LIMIT).await {
            log::warn!("guest calls still running after {SETTLE_LIMIT:?}; stopping anyway");
        }
        // Drop aborts the epoch ticker.
    }
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some(tick) = self.tick.take() {
            tick.abort();
        }
        self.epoch.abort();
    }
}

/// Loads and compiles every component once, binds the listener, and serves in the background.
pub async fn start(config: HostConfig) -> Result<RunningHost> {
    let manifest = manifest::load(&config.manifest, config.wasm_dir.as_deref())?;
    let app_vars = variables::resolve_app_variables(&manifest.variables, &config.variables)?;
    let specs = component_specs(&manifest, &app_vars)?;
    if let Some(tick) = &config.tick {
        validate_tick(tick)?;
    }
    let routes = manifest.routes.clone();
    // Compiling is CPU-bound and takes seconds; keep it off the async workers.
    let guest_log = match &config.log_file {
        Some(path) => Some(open_log(path)?),
        None => None,
    };
    let app = tokio::task::spawn_blocking(move || runtime::App::load(routes, specs, guest_log))
        .await
        .context("component loading panicked")??;
    let app = Arc::new(app);
    let listener = server::bind(config.listen).await?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let frontend = Arc::new(server::Frontend {
        app: app.clone(),
        router: router::Router::new(&manifest.routes),
        local_addr: addr,
    });
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(server::serve(listener, frontend.clone(), stopped));
    let epoch = tokio::spawn(epoch_ticker(app.engine().clone()));
    let tick = config.tick.map(|tick| {
        if frontend.router.route(&tick.path).is_none() {
            log::warn!("tick path {} matches no public route", tick.path);
        }
        tokio::spawn(run_tick(frontend, tick))
    });
    log::info!("serving {} on http://{addr}", config.manifest.display());
    Ok(RunningHost {
        addr,
        app,
        stop,
        server: Some(server),
        tick,
        epoch,
    })
}

/// The components' log file, appended to.
fn open_log(path: &std::path::Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))
}

/// Resolves each component's variables and allowed hosts against the app variables.
fn component_specs(
    manifest: &manifest::Manifest,
    app_vars: &HashMap<String, String>,
) -> Result<Vec<runtime::ComponentSpec>> {
    manifest
        .components
        .iter()
        .map(|(id, decl)| {
            let variables = variables::resolve_component_variables(id, &decl.variables, app_vars)?;
            let hosts = decl
                .allowed_outbound_hosts
                .iter()
                .map(|h| variables::expand(h, app_vars))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("component `{id}`: allowed_outbound_hosts"))?;
            let outbound = outbound::OutboundPolicy::parse(&hosts)
                .with_context(|| format!("component `{id}`: allowed_outbound_hosts"))?;
            Ok(runtime::ComponentSpec {
                id: id.clone(),
                wasm: decl.source.clone(),
                variables,
                outbound,
            })
        })
        .collect()
}

fn validate_tick(tick: &Tick) -> Result<()> {
    if tick.every.is_zero() {
        bail!("tick interval must be greater than zero");
    }
    if !tick.path.starts_with('/') {
        bail!("tick path `{}` must start with `/`", tick.path);
    }
    http::HeaderValue::from_str(&format!("Bearer {}", tick.bearer))
        .context("tick bearer is not a valid header value")?;
    Ok(())
}

/// Lets running guests reach their epoch deadline, so they yield and time limits apply.
async fn epoch_ticker(engine: wasmtime::Engine) {
    let mut interval = tokio::time::interval(runtime::EPOCH_TICK);
    loop {
        interval.tick().await;
        engine.increment_epoch();
    }
}

/// Sends the tick every `every` (first one after one interval), logging failures.
async fn run_tick(frontend: Arc<server::Frontend>, tick: Tick) {
    let start = tokio::time::Instant::now() + tick.every;
    let mut interval = tokio::time::interval_at(start, tick.every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(e) = send_tick(&frontend, &tick).await {
            log::warn!("tick {}: {e:#}", tick.path);
        }
    }
}

async fn send_tick(frontend: &server::Frontend, tick: &Tick) -> Result<()> {
    use http_body_util::BodyExt;
    let req = http::Request::post(&tick.path)
        .header(http::header::HOST, frontend.local_addr.to_string())
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", tick.bearer),
        )
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .context("building the tick request")?;
    let client: SocketAddr = ([127, 0, 0, 1], 0).into();
    let resp = server::handle(frontend, req, client).await;
    let status = resp.status();
    // Read the body so the guest can finish writing it; bounded like a guest call.
    let body = tokio::time::timeout(runtime::GUEST_TIME_LIMIT, resp.into_body().collect())
        .await
        .context("tick response body timed out")?
        .map_err(|e| anyhow::anyhow!("tick response body: {e:?}"))?
        .to_bytes();
    if !status.is_success() {
        bail!("status {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}
