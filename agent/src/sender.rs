//! Drains the spool, oldest first: puts each envelope on the queue, removes it once the queue
//! has it, then kicks reactions. The spool is the only hand-over between the threads that make
//! events and this one, so leftovers of an earlier run go out first and in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use heimdall_azure_storage::{check, StorageError};
use heimdall_events::Envelope;

use crate::backoff::{sleep_unless_stopped, Backoff, STOP_CHECK};
use crate::config::AgentConfig;
use crate::http::Http;
use crate::queue_client::{QueueClient, SharedTokens};
use crate::spool::{Spool, Spooled};

/// Retry pacing while the queue cannot be reached: short first, and never so long that an
/// event waits much beyond the end of an outage.
pub const RETRY_INITIAL: Duration = Duration::from_millis(200);
pub const RETRY_MAX: Duration = Duration::from_secs(10);

/// The events queue and the kick route.
pub struct Sender {
    http: Http,
    queue: QueueClient,
    kick: Option<Kick>,
}

struct Kick {
    url: String,
    bearer: String,
}

/// What became of one attempt to put an envelope on the queue.
enum Outcome {
    Sent,
    /// The service refused this message for good (too large): set it aside, go on.
    Refused(StorageError),
    /// No answer, or an answer that may change (auth, throttling, outage): try again later.
    Retry(anyhow::Error),
}

impl Sender {
    pub fn new(
        config: &AgentConfig,
        http: Http,
        tokens: Option<SharedTokens>,
    ) -> anyhow::Result<Sender> {
        let queue = QueueClient::new(config, &config.queue_name, http.clone(), tokens)?;
        let kick = config.kick_url.as_ref().map(|url| Kick {
            url: url.clone(),
            bearer: format!("Bearer {}", config.app_secret),
        });
        Ok(Sender { http, queue, kick })
    }

    fn deliver(&mut self, envelope: &Envelope) -> Outcome {
        let text = envelope.to_json();
        let response = match self.queue.send(|queue, now| queue.put_message(&text, now)) {
            Ok(response) => response,
            Err(error) => return Outcome::Retry(error),
        };
        match check(&response) {
            Ok(()) => Outcome::Sent,
            Err(error) if error.status() == Some(413) => Outcome::Refused(error),
            Err(error) if error.is_code("QueueNotFound") => {
                // A fresh emulator or a not yet provisioned account: create it, then retry.
                self.create_queue();
                Outcome::Retry(error.into())
            }
            Err(error) => Outcome::Retry(error.into()),
        }
    }

    fn create_queue(&mut self) {
        let result = self
            .queue
            .send(|queue, now| queue.create(now))
            .and_then(|response| Ok(check(&response)?));
        let name = self.queue.name().to_owned();
        match result {
            Ok(()) => tracing::info!(queue = name, "created the queue"),
            Err(error) => tracing::warn!(queue = name, "creating the queue: {error:#}"),
        }
    }

    /// Tells reactions there is work. A failure is only logged: the scheduled tick catches up.
    fn kick(&self) {
        let Some(kick) = &self.kick else {
            return;
        };
        let request = http::Request::post(&kick.url)
            .header("authorization", &kick.bearer)
            .header("content-length", "0")
            .body(Vec::new());
        let result = match request {
            Ok(request) => self.http.send(request),
            Err(error) => Err(error.into()),
        };
        match result {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => tracing::warn!(status = response.status().as_u16(), "kick refused"),
            Err(error) => tracing::warn!("kick failed: {error:#}"),
        }
    }
}

/// The sender thread's loop: until `stop`, send what the spool holds; when it is empty, wait
/// for `wake` (a new envelope was spooled).
pub fn run(spool: &Spool, sender: &mut Sender, stop: &AtomicBool, wake: &Receiver<()>) {
    let mut retry = Backoff::new(RETRY_INITIAL, RETRY_MAX);
    // Kick once a burst has gone out, not after every message of it.
    let mut kick_due = false;
    while !stop.load(Ordering::Relaxed) {
        let oldest = match spool.oldest() {
            Ok(oldest) => oldest,
            Err(error) => {
                tracing::error!("reading the spool: {error}");
                sleep_unless_stopped(stop, retry.next_delay());
                continue;
            }
        };
        let Some(spooled) = oldest else {
            if std::mem::take(&mut kick_due) {
                sender.kick();
            }
            wait_for_wake(wake, stop);
            continue;
        };
        match send_one(spool, sender, &spooled) {
            Step::Sent => {
                retry.reset();
                kick_due = true;
            }
            Step::SetAside => {}
            Step::Retry(error) => {
                let delay = retry.next_delay();
                tracing::warn!(
                    event_id = spooled.envelope.id,
                    "queue put failed: {error:#}; retrying in {delay:?}"
                );
                sleep_unless_stopped(stop, delay);
            }
        }
    }
}

/// What the loop does after one attempt.
enum Step {
    Sent,
    SetAside,
    Retry(anyhow::Error),
}

fn send_one(spool: &Spool, sender: &mut Sender, spooled: &Spooled) -> Step {
    let envelope = &spooled.envelope;
    let started = Instant::now();
    match sender.deliver(envelope) {
        Outcome::Sent => {
            tracing::info!(
                event_id = envelope.id,
                event = envelope.body.name(),
                ms = started.elapsed().as_millis() as u64,
                "sent"
            );
            if let Err(error) = spool.remove(&spooled.path) {
                // It will go out again; the event id makes the repeat harmless.
                tracing::warn!(
                    event_id = envelope.id,
                    "removing {}: {error}",
                    spooled.path.display()
                );
            }
            Step::Sent
        }
        Outcome::Refused(error) => {
            tracing::error!(
                event_id = envelope.id,
                "the queue refused it: {error}; set aside"
            );
            if let Err(error) = spool.reject(&spooled.path) {
                return Step::Retry(anyhow::Error::new(error).context("setting it aside"));
            }
            Step::SetAside
        }
        Outcome::Retry(error) => Step::Retry(error),
    }
}

/// Blocks until something was spooled or `stop` is set, looking at `stop` every [`STOP_CHECK`].
fn wait_for_wake(wake: &Receiver<()>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match wake.recv_timeout(STOP_CHECK) {
            Ok(()) => {
                while wake.try_recv().is_ok() {}
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(STOP_CHECK),
        }
    }
}
