//! Drains the spool, oldest first: puts each envelope on the queue, removes it once the queue
//! has it, then kicks reactions. The spool is the only hand-over between the log side and this
//! side, so leftovers of an earlier run go out first and in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use heimdall_azure_storage::{check, Account, Credential, Endpoint, Queue, StorageError};
use heimdall_events::Envelope;

use crate::backoff::{sleep_unless_stopped, Backoff, STOP_CHECK};
use crate::config::{AgentConfig, QueueAuth};
use crate::http::Http;
use crate::imds::TokenSource;
use crate::log;
use crate::spool::{Spool, Spooled};

/// Retry pacing while the queue cannot be reached.
pub const RETRY_INITIAL: Duration = Duration::from_millis(200);
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// The queue and the kick route, with the HTTP client that reaches them.
pub struct Sender {
    http: Http,
    queue: Queue,
    /// Where the queue's bearer tokens come from; `None` with SharedKey.
    tokens: Option<TokenSource>,
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
    pub fn new(config: &AgentConfig, http: Http) -> anyhow::Result<Sender> {
        let endpoint = Endpoint::new(&config.queue_endpoint, &config.storage_account)
            .context("HEIMDALL_QUEUE_ENDPOINT / HEIMDALL_STORAGE_ACCOUNT")?;
        let (queue, tokens) = match &config.queue_auth {
            QueueAuth::SharedKey { key } => {
                let account = Account::new(&config.storage_account, key)
                    .context("HEIMDALL_STORAGE_ACCOUNT / HEIMDALL_STORAGE_KEY")?;
                (Queue::new(account, endpoint, &config.queue_name), None)
            }
            QueueAuth::ManagedIdentity => {
                // The first real token is fetched before the first put (see `authorize`); a
                // placeholder keeps the queue's construction free of I/O.
                let placeholder = heimdall_azure_storage::BearerToken::new("none")?;
                let queue = Queue::with_credential(
                    Credential::Bearer(placeholder),
                    endpoint,
                    &config.queue_name,
                );
                (queue, Some(TokenSource::new(&config.imds_endpoint)))
            }
        };
        let kick = config.kick_url.as_ref().map(|url| Kick {
            url: url.clone(),
            bearer: format!("Bearer {}", config.app_secret),
        });
        Ok(Sender {
            http,
            queue,
            tokens,
            kick,
        })
    }

    fn deliver(&mut self, envelope: &Envelope) -> Outcome {
        if let Err(error) = self.authorize(false) {
            return Outcome::Retry(error);
        }
        let mut response = match self.put(envelope) {
            Ok(response) => response,
            Err(error) => return Outcome::Retry(error),
        };
        if self.token_refused(&response) {
            // Revoked or expired early, or a role granted after the token was issued: one new
            // token and one more try; after that the usual backoff.
            log(&format!(
                "queue refused the storage token ({}); asking IMDS for a new one",
                response.status()
            ));
            if let Err(error) = self.authorize(true) {
                return Outcome::Retry(error);
            }
            response = match self.put(envelope) {
                Ok(response) => response,
                Err(error) => return Outcome::Retry(error),
            };
        }
        self.outcome(&response)
    }

    fn put(&self, envelope: &Envelope) -> anyhow::Result<http::Response<Vec<u8>>> {
        let request = self
            .queue
            .put_message(&envelope.to_json(), SystemTime::now());
        self.http.send(request)
    }

    /// With managed identity, gives the queue a current token (a new one if `renew`). An error
    /// (IMDS unreachable, updating, throttled) is retried like a failed put.
    fn authorize(&mut self, renew: bool) -> anyhow::Result<()> {
        let Some(tokens) = &mut self.tokens else {
            return Ok(());
        };
        let token = if renew {
            tokens.renew(&self.http)
        } else {
            tokens.current(&self.http)
        };
        let token = token.context("no storage token from IMDS (managed identity)")?;
        self.queue.set_credential(Credential::Bearer(token));
        Ok(())
    }

    /// 401 (token not accepted) or 403 (not allowed) while sending a bearer token.
    fn token_refused(&self, response: &http::Response<Vec<u8>>) -> bool {
        self.tokens.is_some() && matches!(response.status().as_u16(), 401 | 403)
    }

    fn outcome(&self, response: &http::Response<Vec<u8>>) -> Outcome {
        match check(response) {
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

    fn create_queue(&self) {
        let result = self
            .http
            .send(self.queue.create(SystemTime::now()))
            .and_then(|response| Ok(check(&response)?));
        match result {
            Ok(()) => log(&format!("created queue {}", self.queue.name())),
            Err(error) => log(&format!("creating queue {}: {error:#}", self.queue.name())),
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
            Ok(response) => log(&format!("kick answered {}", response.status())),
            Err(error) => log(&format!("kick failed: {error:#}")),
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
                log(&format!("reading the spool: {error}"));
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
                let id = &spooled.envelope.id;
                log(&format!(
                    "queue put for {id} failed: {error:#}; retrying in {delay:?}"
                ));
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
            log(&format!(
                "sent {} {:?} in {} ms",
                envelope.id,
                envelope.body,
                started.elapsed().as_millis()
            ));
            if let Err(error) = spool.remove(&spooled.path) {
                // It will go out again; the event id makes the repeat harmless.
                log(&format!("removing {}: {error}", spooled.path.display()));
            }
            Step::Sent
        }
        Outcome::Refused(error) => {
            log(&format!(
                "queue refused {}: {error}; set aside",
                envelope.id
            ));
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
