//! The control queue: orders from the app for this VM. Today one: "save and stop", which the
//! app sends on /stop before it scales in. A message is deleted only once it was acted on, so
//! an agent that dies midway gets it again after the visibility timeout.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;
use heimdall_azure_storage::queue::parse_messages;
use heimdall_azure_storage::{check, ReceivedMessage};
use heimdall_events::{ControlBody, ControlMessage, GameEvent, GameStopped};

use crate::backoff::{sleep_unless_stopped, Backoff};
use crate::queue_client::QueueClient;
use crate::scheduled::id_part;
use crate::Agent;

/// How long a taken message stays hidden beyond the stop timeout: the stop and its save must
/// be over before anyone could see it again.
const VISIBILITY_MARGIN_S: u64 = 60;
const RETRY_MAX: Duration = Duration::from_secs(30);

pub(crate) fn run(agent: &Agent, mut queue: QueueClient) {
    let Some(vm_name) = agent.wait_for_vm_name() else {
        return;
    };
    let poll = agent.config.control_poll;
    let mut retry = Backoff::new(poll, RETRY_MAX.max(poll));
    let mut done = HashSet::new();
    tracing::info!(queue = queue.name(), "reading control messages");
    while !agent.stopped() {
        let delay = match take(agent, &mut queue, vm_name, &mut done) {
            Ok(()) => {
                retry.reset();
                poll
            }
            Err(error) => {
                let delay = retry.next_delay();
                tracing::warn!("control queue: {error:#}; again in {delay:?}");
                delay
            }
        };
        sleep_unless_stopped(&agent.stop, delay);
    }
}

/// Takes the waiting messages, acts on each, and deletes it.
fn take(
    agent: &Agent,
    queue: &mut QueueClient,
    vm_name: &str,
    done: &mut HashSet<String>,
) -> anyhow::Result<()> {
    let visibility = agent.config.stop_timeout.as_secs() + VISIBILITY_MARGIN_S;
    let visibility = u32::try_from(visibility).unwrap_or(u32::MAX);
    let response = queue.send(|q, now| q.get_messages(4, visibility, now))?;
    check(&response).context("get messages")?;
    for message in parse_messages(response.body())? {
        act(agent, &message, vm_name, done);
        let response = queue.send(|q, now| q.delete_message(&message, now))?;
        check(&response).context("delete message")?;
    }
    Ok(())
}

fn act(agent: &Agent, message: &ReceivedMessage, vm_name: &str, done: &mut HashSet<String>) {
    let decoded = message
        .payload()
        .map_err(anyhow::Error::from)
        .and_then(|bytes| Ok(ControlMessage::from_json(&bytes)?));
    let control = match decoded {
        Ok(control) => control,
        Err(error) => {
            return tracing::warn!(
                message = message.id,
                "not a control message ({error}); dropped"
            )
        }
    };
    let id = control.id.as_str();
    if control.server != agent.config.server_id {
        return tracing::warn!(
            control_id = id,
            server = control.server,
            "for another server; dropped"
        );
    }
    if control
        .vm_name
        .as_deref()
        .is_some_and(|wanted| !wanted.eq_ignore_ascii_case(vm_name))
    {
        return tracing::info!(control_id = id, "for another VM (an earlier boot); dropped");
    }
    if !done.insert(control.id.clone()) {
        return tracing::info!(control_id = id, "done already; dropped");
    }
    match control.body {
        ControlBody::SaveAndStop(order) => {
            tracing::info!(control_id = id, by = order.requested_by, "save and stop");
            let report = agent.stopper.stop(&agent.stop);
            agent.emit(
                format!("stopped-{}", id_part(id)),
                GameEvent::GameStopped(GameStopped {
                    saved: report.saved,
                    duration_ms: u32::try_from(report.duration.as_millis()).unwrap_or(u32::MAX),
                }),
            );
        }
    }
}
