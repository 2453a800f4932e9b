//! Carrying out one effect: a Discord call, a scaler call or a control message. Scaler answers
//! come back as inputs.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use heimdall_azure_arm::scaler_api::{
    CapacityRequest, InstanceReply, OperationRequest, ScaleReply,
};
use heimdall_azure_storage::check;
use heimdall_discord::rest::{create_message, edit_original};
use heimdall_events::{ControlBody, ControlMessage, SaveAndStop};
use heimdall_server_state::{EffectKind, Input, ScaleOutcome};
use heimdall_spin_io::send;

use crate::config::{Config, SCALER};

/// A control message that nobody took within this long is for a VM that is gone.
const CONTROL_TTL_S: u32 = 3600;

pub(crate) async fn execute(config: &Config, effect: &EffectKind) -> anyhow::Result<Option<Input>> {
    match effect {
        EffectKind::EditReply { reply, content } => {
            let request = edit_original(
                &config.discord_api,
                &reply.application_id,
                &reply.token,
                content,
            );
            discord(request).await.map(|()| None)
        }
        EffectKind::PostMessage {
            channel_id,
            content,
        } => {
            let request =
                create_message(&config.discord_api, &config.bot_token, channel_id, content);
            discord(request).await.map(|()| None)
        }
        EffectKind::Scale { capacity } => {
            let body = serde_json::to_vec(&CapacityRequest {
                capacity: *capacity,
            })?;
            scale(*capacity, scaler("POST", "/capacity", body)?).await
        }
        EffectKind::PollOperation { capacity, poll_url } => {
            let body = serde_json::to_vec(&OperationRequest {
                operation: poll_url.clone(),
            })?;
            scale(*capacity, scaler("POST", "/operation", body)?).await
        }
        EffectKind::LookupInstance => {
            let response = send(scaler("GET", "/instance", Vec::new())?).await?;
            if !response.status().is_success() {
                bail!("scaler /instance answered {}", response.status());
            }
            let reply: InstanceReply =
                serde_json::from_slice(response.body()).context("scaler /instance answer")?;
            Ok(Some(Input::Instance {
                vm_name: reply.vm_name,
                public_ip: reply.public_ip,
            }))
        }
        EffectKind::SaveAndStop {
            id,
            vm_name,
            requested_by,
        } => {
            let message = ControlMessage::new(
                id.clone(),
                config.server_id.clone(),
                vm_name.clone(),
                now_ms(),
                ControlBody::SaveAndStop(SaveAndStop {
                    requested_by: requested_by.clone(),
                }),
            );
            let request = config.control.put_expiring_message(
                &message.to_json(),
                CONTROL_TTL_S,
                SystemTime::now(),
            );
            let response = send(request).await?;
            check(&response).context("put the control message")?;
            Ok(None)
        }
    }
}

async fn discord(request: http::Request<Vec<u8>>) -> anyhow::Result<()> {
    let response = send(request).await?;
    if response.status() == http::StatusCode::NOT_FOUND {
        // The interaction token expired (15 minutes) or the channel is gone: nothing to retry.
        eprintln!("reactions: Discord no longer knows that message or channel; skipped");
        return Ok(());
    }
    if let Some(wait) = heimdall_discord::rest::retry_after_s(&response) {
        bail!("Discord rate limit, retry after {wait} s");
    }
    if !response.status().is_success() {
        bail!("Discord answered {}", response.status());
    }
    Ok(())
}

async fn scale(capacity: u32, request: http::Request<Vec<u8>>) -> anyhow::Result<Option<Input>> {
    let response = send(request).await?;
    // The scaler answers failures of Azure with a `Failed` body (and a 502): a real outcome.
    let reply: ScaleReply = serde_json::from_slice(response.body()).with_context(|| {
        format!(
            "scaler answered {} without a scale reply",
            response.status()
        )
    })?;
    let outcome = match reply {
        ScaleReply::Succeeded => ScaleOutcome::Succeeded,
        ScaleReply::InProgress { operation, .. } => ScaleOutcome::InProgress {
            poll_url: operation,
        },
        ScaleReply::Failed { code, message } => ScaleOutcome::Failed {
            message: format!("{code}: {message}"),
        },
    };
    Ok(Some(Input::Scaled { capacity, outcome }))
}

fn scaler(method: &str, path: &str, body: Vec<u8>) -> anyhow::Result<http::Request<Vec<u8>>> {
    Ok(http::Request::builder()
        .method(method)
        .uri(format!("{SCALER}{path}"))
        .header("content-type", "application/json")
        .body(body)?)
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
