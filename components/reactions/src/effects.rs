//! Carrying out one effect: a Discord call, a scaler call or a control message. Scaler answers
//! come back as inputs; what went wrong says whether to try again, and when.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use heimdall_azure_arm::scaler_api::{
    CapacityRequest, InstanceReply, OperationRequest, ScaleReply, ARM_TOKEN_HEADER, EVENT_HEADER,
};
use heimdall_azure_storage::check;
use heimdall_discord::rest::{create_message, delivery, edit_original, Delivery};
use heimdall_events::{ControlBody, ControlMessage, SaveAndStop};
use heimdall_server_state::{EffectKind, Input, ScaleOutcome};
use heimdall_spin_io::send;

use crate::config::{Config, SCALER};

/// A control message that nobody took within this long is for a VM that is gone.
const CONTROL_TTL_S: u32 = 3600;
/// An edit that overtook the interaction's initial response is tried again this often, this
/// many times, before it waits for the tick.
const NOT_YET_PAUSE: Duration = Duration::from_millis(300);
const NOT_YET_TRIES: u32 = 5;
/// A rate limit this short is waited out at once rather than left to the tick.
const SHORT_RATE_LIMIT_S: f64 = 2.0;

/// What became of one effect.
pub(crate) enum Outcome {
    /// Done; a scaler call's answer comes back as an input.
    Done(Option<Input>),
    /// Not now: try again after `after_ms` when the service said, else after a backoff.
    Later { after_ms: Option<u64>, why: String },
    /// Never: it is removed from the outbox, and `why` goes to the log.
    Never(String),
}

/// Carries out effects for one invocation of reactions, which keeps the ARM token the scaler
/// hands back, so that the whole invocation costs at most one token from Entra.
pub(crate) struct Executor<'a> {
    config: &'a Config,
    arm_token: Option<String>,
}

impl<'a> Executor<'a> {
    pub fn new(config: &'a Config) -> Executor<'a> {
        Executor {
            config,
            arm_token: None,
        }
    }

    /// Carries out `effect`, which event `cause` led to (the scaler logs it too).
    pub async fn execute(&mut self, effect: &EffectKind, cause: &str) -> Outcome {
        match effect {
            EffectKind::EditReply {
                reply,
                content,
                channel_id,
            } => {
                let request = edit_original(
                    &self.config.discord_api,
                    &reply.application_id,
                    &reply.token,
                    content,
                );
                match self.discord(request.map_err(|e| e.to_string())).await {
                    Ok(outcome) => outcome,
                    // The token lasts 15 minutes: past that (or with a token that is not one),
                    // the channel hears it instead.
                    Err(Gone(why)) => match channel_id {
                        Some(channel_id) => self.post(channel_id, content).await,
                        None => Outcome::Never(why),
                    },
                }
            }
            EffectKind::PostMessage {
                channel_id,
                content,
            } => self.post(channel_id, content).await,
            EffectKind::Scale { capacity, size } => {
                let request = CapacityRequest {
                    capacity: *capacity,
                    size: size.clone(),
                };
                self.scale(*capacity, "/capacity", &request, cause).await
            }
            EffectKind::PollOperation { capacity, poll_url } => {
                let request = OperationRequest {
                    operation: poll_url.clone(),
                };
                self.scale(*capacity, "/operation", &request, cause).await
            }
            EffectKind::LookupInstance => self.instance(cause).await,
            EffectKind::SaveAndStop {
                id,
                vm_name,
                requested_by,
            } => self.save_and_stop(id, vm_name.clone(), requested_by).await,
        }
    }

    async fn post(&self, channel_id: &str, content: &str) -> Outcome {
        let request = create_message(
            &self.config.discord_api,
            &self.config.bot_token,
            channel_id,
            content,
        );
        self.discord(request.map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|Gone(why)| Outcome::Never(why))
    }

    /// Sends a message to Discord, waiting out at once what is short: an edit that overtook
    /// the initial response, a rate limit of a second or two.
    /// The reply or channel no longer exists, or a request for it cannot be made (`Err`).
    async fn discord(
        &self,
        request: Result<http::Request<Vec<u8>>, String>,
    ) -> Result<Outcome, Gone> {
        let request = request.map_err(Gone)?;
        let mut tries = 0;
        loop {
            tries += 1;
            let response = match send(request.clone()).await {
                Ok(response) => response,
                Err(e) => return Ok(later(None, format!("{e:#}"))),
            };
            let outcome = match delivery(&response) {
                Delivery::Delivered => Outcome::Done(None),
                Delivery::NotYet if tries < NOT_YET_TRIES => {
                    pause(NOT_YET_PAUSE);
                    continue;
                }
                Delivery::NotYet => later(
                    Some(1_000),
                    "the interaction's reply is not there yet".into(),
                ),
                Delivery::RateLimited { retry_after_s }
                    if tries == 1 && retry_after_s <= SHORT_RATE_LIMIT_S =>
                {
                    pause(Duration::from_secs_f64(retry_after_s));
                    continue;
                }
                Delivery::RateLimited { retry_after_s } => later(
                    Some((retry_after_s * 1000.0).ceil() as u64),
                    format!("Discord rate limit, {retry_after_s} s"),
                ),
                Delivery::Unavailable { status } => {
                    later(None, format!("Discord answered {status}"))
                }
                Delivery::Gone { code } => {
                    return Err(Gone(format!(
                        "Discord no longer knows that reply or channel (code {code:?})"
                    )))
                }
                Delivery::Refused { status, detail } => {
                    Outcome::Never(format!("Discord refused it ({status}): {detail}"))
                }
            };
            return Ok(outcome);
        }
    }

    async fn scale<T: serde::Serialize>(
        &mut self,
        capacity: u32,
        path: &str,
        body: &T,
        cause: &str,
    ) -> Outcome {
        let response = match self.scaler("POST", path, body, cause).await {
            Ok(response) => response,
            Err(e) => return later(None, format!("{e:#}")),
        };
        let reply = match serde_json::from_slice::<ScaleReply>(response.body()) {
            Ok(reply) => reply,
            // Not the contract: the scaler did not run to its answer (the host's 500 for a
            // trapped instance, say). It says so itself when it cannot work for good
            // (misconfigured), so this is worth another try, a bounded number of times.
            Err(_) => ScaleReply::Retry {
                code: format!("Scaler{}", response.status().as_u16()),
                message: String::from_utf8_lossy(response.body())
                    .chars()
                    .take(300)
                    .collect(),
                retry_after_s: None,
            },
        };
        let outcome = match reply {
            ScaleReply::Succeeded => ScaleOutcome::Succeeded,
            ScaleReply::InProgress {
                operation,
                retry_after_s,
            } => ScaleOutcome::InProgress {
                poll_url: operation,
                retry_after_ms: u64::from(retry_after_s) * 1000,
            },
            ScaleReply::Retry {
                code,
                message,
                retry_after_s,
            } => ScaleOutcome::Retry {
                reason: format!("{code}: {message}"),
                retry_after_ms: retry_after_s.map(|s| u64::from(s) * 1000),
            },
            ScaleReply::NoCapacity {
                code,
                message,
                region,
            } => ScaleOutcome::NoCapacity {
                reason: format!("{code}: {message}"),
                region,
            },
            ScaleReply::Failed { code, message } => ScaleOutcome::Failed {
                message: format!("{code}: {message}"),
            },
        };
        Outcome::Done(Some(Input::Scaled { capacity, outcome }))
    }

    async fn instance(&mut self, cause: &str) -> Outcome {
        let response = match self.scaler("GET", "/instance", &(), cause).await {
            Ok(response) => response,
            Err(e) => return later(None, format!("{e:#}")),
        };
        if !response.status().is_success() {
            return later(
                None,
                format!("scaler /instance answered {}", response.status()),
            );
        }
        match serde_json::from_slice::<InstanceReply>(response.body()) {
            Ok(reply) => Outcome::Done(Some(Input::Instance {
                vm_name: reply.vm_name,
                public_ip: reply.public_ip,
            })),
            Err(e) => later(None, format!("scaler /instance answer: {e}")),
        }
    }

    /// A request to the scaler with the ARM token of an earlier call, if any; the token it used
    /// is kept for the next call.
    async fn scaler<T: serde::Serialize>(
        &mut self,
        method: &str,
        path: &str,
        body: &T,
        cause: &str,
    ) -> anyhow::Result<http::Response<Vec<u8>>> {
        let body = if method == "GET" {
            Vec::new()
        } else {
            serde_json::to_vec(body)?
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{SCALER}{path}"))
            .header("content-type", "application/json")
            .header(EVENT_HEADER, cause);
        if let Some(token) = &self.arm_token {
            request = request.header(ARM_TOKEN_HEADER, token);
        }
        let response = send(request.body(body)?).await?;
        if let Some(token) = response
            .headers()
            .get(ARM_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            self.arm_token = Some(token.to_owned());
        }
        Ok(response)
    }

    async fn save_and_stop(
        &self,
        id: &str,
        vm_name: Option<String>,
        requested_by: &str,
    ) -> Outcome {
        let message = ControlMessage::new(
            id.to_owned(),
            self.config.server_id.clone(),
            vm_name,
            now_ms(),
            ControlBody::SaveAndStop(SaveAndStop {
                requested_by: requested_by.to_owned(),
            }),
        );
        let request = self.config.control.put_expiring_message(
            &message.to_json(),
            CONTROL_TTL_S,
            SystemTime::now(),
        );
        let sent = async {
            let response = send(request).await?;
            check(&response).context("put the control message")?;
            Ok::<_, anyhow::Error>(())
        };
        match sent.await {
            Ok(()) => Outcome::Done(None),
            Err(e) => later(None, format!("{e:#}")),
        }
    }
}

/// The reply's token expired, the channel was deleted, or they cannot be named in a URL; why,
/// for the log.
struct Gone(String);

fn later(after_ms: Option<u64>, why: String) -> Outcome {
    Outcome::Later { after_ms, why }
}

/// A short wait inside the invocation (the component blocks on the monotonic clock).
fn pause(duration: Duration) {
    std::thread::sleep(duration);
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
