//! The Heimdall agent: runs on the game VM, follows the Valheim server's log, turns lines into
//! game events ([`heimdall_valheim_log`]) and puts them on the `events` queue, then kicks the
//! reactions component. Every event is spooled to disk first, so none is lost when the queue
//! cannot be reached or the agent restarts.
//!
//! Two threads: this one follows the log and writes envelopes to the spool; the sender thread
//! drains the spool in order (see [`sender`]). Configuration: `agent/README.md`.

mod backoff;
mod config;
mod follow;
mod http;
mod imds;
pub mod sender;
pub mod spool;
mod token;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender as WakeSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use heimdall_events::{Envelope, EventBody, GameEvent};
use heimdall_valheim_log::LogParser;

pub use crate::backoff::{sleep_unless_stopped, Backoff, STOP_CHECK};
pub use crate::config::{AgentConfig, QueueAuth};
pub use crate::follow::{FileFollower, Follower, LineSplitter, LogSource};
pub use crate::http::Http;
pub use crate::spool::Spool;

/// Pause between polls of an idle log grows from this…
const IDLE_MIN: Duration = Duration::from_millis(10);
/// …to this, so that a quiet log costs a few wake-ups a second.
const IDLE_MAX: Duration = Duration::from_millis(250);

/// Runs the agent until `stop` is set (looked at least every 100 ms). Returns an error only for
/// what a restart cannot fix by waiting: bad configuration, a spool directory that cannot be
/// made. An HTTP request in flight when `stop` is set finishes (or times out) first.
pub fn run(config: AgentConfig, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let spool = Arc::new(
        Spool::open(&config.spool_dir)
            .with_context(|| format!("spool directory {}", config.spool_dir.display()))?,
    );
    let http = Http::new();
    let mut sender = sender::Sender::new(&config, http.clone())?;
    // Opened before anything slow (IMDS), so that following from the end misses nothing.
    let mut follower = Follower::open(&config.log_source);

    let (wake, woken) = mpsc::channel();
    let sender_stop = Arc::new(AtomicBool::new(false));
    let sender_thread = thread::Builder::new().name("sender".into()).spawn({
        let (spool, sender_stop) = (spool.clone(), sender_stop.clone());
        move || sender::run(&spool, &mut sender, &sender_stop, &woken)
    })?;

    let emitter = Emitter {
        server_id: &config.server_id,
        spool: &spool,
        wake,
        stop: &stop,
    };
    follow(&config, &http, &emitter, &mut follower);
    drop(follower);
    sender_stop.store(true, Ordering::Relaxed);
    if sender_thread.join().is_err() {
        log("the sender thread panicked");
    }
    log("stopped");
    Ok(())
}

/// Announces the VM, then turns log lines into spooled events until `stop`.
fn follow(config: &AgentConfig, http: &Http, emitter: &Emitter, follower: &mut Follower) {
    let Some(vm) = imds::vm_up(config, http, emitter.stop) else {
        return;
    };
    log(&format!(
        "server {}: VM {} at {}",
        config.server_id, vm.vm_name, vm.public_ip
    ));
    emitter.emit(GameEvent::VmUp(vm));
    let mut parser = LogParser::new();
    let mut idle = Backoff::new(IDLE_MIN, IDLE_MAX);
    while !emitter.stopped() {
        let lines = follower.poll(&mut |line| {
            for event in parser.line(line) {
                emitter.emit(event);
            }
        });
        if lines > 0 {
            idle.reset();
        } else {
            follower.wait(emitter.stop, idle.next_delay());
        }
    }
}

/// Wraps events in envelopes and hands them to the spool (and so to the sender thread).
struct Emitter<'a> {
    server_id: &'a str,
    spool: &'a Spool,
    wake: WakeSender<()>,
    stop: &'a AtomicBool,
}

impl Emitter<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Spools the event, retrying while the disk refuses (full, read-only): the log waits
    /// meanwhile, which loses nothing. Gives up only when `stop` is set.
    fn emit(&self, event: GameEvent) {
        let envelope = match new_id() {
            Ok(id) => Envelope::new(
                id,
                self.server_id.to_owned(),
                now_ms(),
                EventBody::Game(event),
            ),
            Err(error) => {
                log(&format!(
                    "no randomness for an event id: {error:#}; event dropped"
                ));
                return;
            }
        };
        let mut retry = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match self.spool.write(&envelope) {
                Ok(_) => {
                    // The sender may have ended already when stopping; the spool keeps it.
                    let _ = self.wake.send(());
                    return;
                }
                Err(error) => {
                    let delay = retry.next_delay();
                    log(&format!(
                        "cannot spool {}: {error}; retrying in {delay:?}",
                        envelope.id
                    ));
                    if !sleep_unless_stopped(self.stop, delay) {
                        log(&format!("stopping with {} unspooled", envelope.id));
                        return;
                    }
                }
            }
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

/// One line on standard error (the journal on the VM). Never given a secret.
pub(crate) fn log(message: &str) {
    eprintln!("heimdall-agent: {message}");
}
