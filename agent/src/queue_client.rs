//! One queue, reached with the agent's credential: SharedKey, or the managed identity's Entra
//! tokens (shared by every queue of the agent, renewed before they expire, and once more at
//! once when the service refuses one).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context as _;
use heimdall_azure_storage::{Account, BearerToken, Credential, Endpoint, Queue};

use crate::config::{AgentConfig, QueueAuth};
use crate::http::Http;
use crate::imds::TokenSource;

/// Where bearer tokens come from; shared between the agent's queues.
pub type SharedTokens = Arc<Mutex<TokenSource>>;

pub struct QueueClient {
    http: Http,
    queue: Queue,
    tokens: Option<SharedTokens>,
}

impl QueueClient {
    /// A client for queue `name`. `tokens` must be given with managed identity (one source for
    /// all of the agent's queues, so one token serves them all).
    pub fn new(
        config: &AgentConfig,
        name: &str,
        http: Http,
        tokens: Option<SharedTokens>,
    ) -> anyhow::Result<QueueClient> {
        let endpoint = Endpoint::new(&config.queue_endpoint, &config.storage_account)
            .context("HEIMDALL_QUEUE_ENDPOINT / HEIMDALL_STORAGE_ACCOUNT")?;
        let queue = match &config.queue_auth {
            QueueAuth::SharedKey { key } => {
                let account = Account::new(&config.storage_account, key)
                    .context("HEIMDALL_STORAGE_ACCOUNT / HEIMDALL_STORAGE_KEY")?;
                Queue::new(account, endpoint, name)
            }
            QueueAuth::ManagedIdentity => {
                // The first real token is fetched before the first request (see `authorize`);
                // a placeholder keeps the construction free of I/O.
                let placeholder = Credential::Bearer(BearerToken::new("none")?);
                Queue::with_credential(placeholder, endpoint, name)
            }
        };
        let tokens = match config.queue_auth {
            QueueAuth::SharedKey { .. } => None,
            QueueAuth::ManagedIdentity => {
                Some(tokens.context("managed identity needs a token source")?)
            }
        };
        Ok(QueueClient {
            http,
            queue,
            tokens,
        })
    }

    /// The token source for managed identity; `None` with SharedKey.
    pub fn token_source(config: &AgentConfig) -> Option<SharedTokens> {
        (config.queue_auth == QueueAuth::ManagedIdentity)
            .then(|| Arc::new(Mutex::new(TokenSource::new(&config.imds_endpoint))))
    }

    pub fn name(&self) -> &str {
        self.queue.name()
    }

    /// Sends the request that `build` makes for this queue. A 401 or 403 to a bearer token
    /// gets one new token and one more try (revoked, expired early, or a role granted after the
    /// token was issued); after that the caller's backoff takes over.
    pub fn send(
        &mut self,
        build: impl Fn(&Queue, SystemTime) -> http::Request<Vec<u8>>,
    ) -> anyhow::Result<http::Response<Vec<u8>>> {
        self.authorize(false)?;
        let response = self.http.send(build(&self.queue, SystemTime::now()))?;
        if !self.token_refused(&response) {
            return Ok(response);
        }
        tracing::warn!(
            queue = self.queue.name(),
            status = response.status().as_u16(),
            "the queue refused the storage token; asking IMDS for a new one"
        );
        self.authorize(true)?;
        self.http.send(build(&self.queue, SystemTime::now()))
    }

    /// With managed identity, gives the queue a current token (a new one if `renew`).
    fn authorize(&mut self, renew: bool) -> anyhow::Result<()> {
        let Some(tokens) = &self.tokens else {
            return Ok(());
        };
        let mut tokens = tokens
            .lock()
            .map_err(|_| anyhow::anyhow!("the token source was poisoned"))?;
        let token = if renew {
            tokens.renew(&self.http)
        } else {
            tokens.current(&self.http)
        };
        let token = token.context("no storage token from IMDS (managed identity)")?;
        self.queue.set_credential(Credential::Bearer(token));
        Ok(())
    }

    fn token_refused(&self, response: &http::Response<Vec<u8>>) -> bool {
        self.tokens.is_some() && matches!(response.status().as_u16(), 401 | 403)
    }
}
