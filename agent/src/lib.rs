//! The Heimdall agent: runs on the game VM, follows the Valheim server's log, turns lines into
//! game events ([`heimdall_valheim_log`]) and puts them on the `events` queue, then kicks the
//! reactions component. It also stops the game gracefully, so that the world is saved, when the
//! app asks (`control` queue) and before Azure takes or restarts the VM (Scheduled Events).
//!
//! Threads, all ending when `stop` is set:
//! - this one follows the log and writes envelopes to the spool ([`reading`]);
//! - the sender drains the spool in order ([`sender`]); nothing is lost to an outage or a
//!   restart, and nothing is sent twice under two ids;
//! - the control poller takes "save and stop" messages ([`control`]);
//! - the watcher polls Scheduled Events and sends the heartbeat ([`watch`]).
//!
//! Configuration: `agent/README.md`, or `heimdall-agent --help`.

mod backoff;
mod config;
mod control;
mod follow;
mod http;
mod imds;
mod position;
mod queue_client;
mod reading;
mod scheduled;
pub mod sender;
pub mod spool;
mod stopper;
mod token;
mod watch;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender as WakeSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use heimdall_events::{Envelope, EventBody, GameEvent};

pub use crate::backoff::{sleep_unless_stopped, Backoff, STOP_CHECK};
pub use crate::config::{env_vars, AgentConfig, Args, QueueAuth};
pub use crate::follow::{FileFollower, Follower, LineSplitter, LogSource};
pub use crate::http::Http;
pub use crate::position::{split_timestamp, LinePosition, PositionFile, Stamper};
pub use crate::spool::Spool;

use crate::queue_client::QueueClient;
use crate::stopper::GameStopper;

/// Runs the agent until `stop` is set (looked at least every 100 ms). Returns an error only for
/// what a restart cannot fix by waiting: bad configuration, a state directory that cannot be
/// made. An HTTP request in flight when `stop` is set finishes (or times out) first.
pub fn run(config: AgentConfig, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let spool = Spool::open(&config.spool_dir())
        .with_context(|| format!("state directory {}", config.state_dir.display()))?;
    let http = Http::new();
    let tokens = QueueClient::token_source(&config);
    let mut sender = sender::Sender::new(&config, http.clone(), tokens.clone())?;
    let control = match &config.control_queue {
        Some(name) => Some(QueueClient::new(&config, name, http.clone(), tokens)?),
        None => None,
    };
    // Opened before anything slow (IMDS), so that following from the end misses nothing.
    let follower = Follower::open(&config.log_source);

    let (wake, woken) = mpsc::channel();
    let agent = Arc::new(Agent {
        stopper: GameStopper::new(&config.stop_command, config.stop_timeout),
        config,
        spool,
        http,
        wake,
        stop,
        players: Mutex::new(Vec::new()),
        vm_name: OnceLock::new(),
    });
    // The sender outlives the others, so that what they spool while stopping still goes out
    // when it can; it gets its own flag.
    let sender_stop = Arc::new(AtomicBool::new(false));
    let sender_thread = spawn("sender", {
        let (agent, sender_stop) = (agent.clone(), sender_stop.clone());
        move || sender::run(&agent.spool, &mut sender, &sender_stop, &woken)
    })?;
    let mut helpers = vec![spawn("watch", {
        let agent = agent.clone();
        move || watch::run(&agent)
    })?];
    if let Some(queue) = control {
        let agent = agent.clone();
        helpers.push(spawn("control", move || control::run(&agent, queue))?);
    }

    reading::follow(&agent, follower);
    for helper in helpers {
        if helper.join().is_err() {
            tracing::error!("a helper thread panicked");
        }
    }
    sender_stop.store(true, Ordering::Relaxed);
    if sender_thread.join().is_err() {
        tracing::error!("the sender thread panicked");
    }
    tracing::info!("stopped");
    Ok(())
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> anyhow::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .with_context(|| format!("starting the {name} thread"))
}

/// What the threads share.
pub(crate) struct Agent {
    pub config: AgentConfig,
    pub spool: Spool,
    pub http: Http,
    /// Tells the sender that something was spooled.
    wake: WakeSender<()>,
    pub stop: Arc<AtomicBool>,
    pub stopper: GameStopper,
    /// Who is online, as the log reader has it (for the heartbeat).
    pub players: Mutex<Vec<String>>,
    /// This VM's name, once the metadata service (or the configuration) told it.
    pub vm_name: OnceLock<String>,
}

impl Agent {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Waits until the VM's name is known; `None` when stopping first.
    pub fn wait_for_vm_name(&self) -> Option<&str> {
        loop {
            if let Some(name) = self.vm_name.get() {
                return Some(name);
            }
            if !sleep_unless_stopped(&self.stop, STOP_CHECK) {
                return None;
            }
        }
    }

    /// Wraps the event in an envelope with `id` and hands it to the spool (and so to the sender
    /// thread), retrying while the disk refuses (full, read-only): the caller waits meanwhile,
    /// which loses nothing. Gives up only when `stop` is set.
    pub fn emit(&self, id: String, event: GameEvent) {
        let envelope = Envelope::new(
            id,
            self.config.server_id.clone(),
            now_ms(),
            EventBody::Game(event),
        );
        let mut retry = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match self.spool.write(&envelope) {
                Ok(_) => {
                    tracing::debug!(
                        event_id = envelope.id,
                        event = envelope.body.name(),
                        "spooled"
                    );
                    // The sender may have ended already when stopping; the spool keeps it.
                    let _ = self.wake.send(());
                    return;
                }
                Err(error) => {
                    let delay = retry.next_delay();
                    tracing::error!(
                        event_id = envelope.id,
                        "cannot spool: {error}; retrying in {delay:?}"
                    );
                    if !sleep_unless_stopped(&self.stop, delay) {
                        tracing::error!(event_id = envelope.id, "stopping with it unspooled");
                        return;
                    }
                }
            }
        }
    }

    /// Emits with a fresh random id: for what the log does not number (the VM's address, a
    /// heartbeat).
    pub fn emit_new(&self, event: GameEvent) {
        match new_id() {
            Ok(id) => self.emit(id, event),
            Err(error) => tracing::error!("no randomness for an event id: {error:#}; dropped"),
        }
    }
}

/// A random 128-bit event id in hex.
pub fn new_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|error| anyhow::anyhow!("getrandom: {error}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
