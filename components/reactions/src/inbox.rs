//! Draining the queues: each message is applied to the state once, its effects carried out, and
//! only then deleted. A message that keeps failing, or that does not belong on its queue, goes
//! to the poison queue.
//!
//! Two queues, because they have different writers: `commands` only the interactions component
//! can write (it checked Discord's signature and the member's roles), `events` the VM's identity
//! can write too. A command found on `events` is a forgery from the VM and is set aside.

use std::time::SystemTime;

use anyhow::Context;
use heimdall_azure_storage::queue::{parse_messages, parse_peeked};
use heimdall_azure_storage::{check, Queue, ReceivedMessage};
use heimdall_events::{Envelope, EventBody};
use heimdall_server_state::{Effect, EffectKind, Input};
use heimdall_spin_io::{send, Log};

use crate::config::Config;
use crate::effects::{now_ms, Executor, Outcome};
use crate::store::{self, Stored};

/// Messages taken per Get Messages call.
const BATCH: u8 = 16;
/// Get Messages calls per invocation, so one invocation stays short.
const MAX_BATCHES: usize = 8;
/// How long a taken message stays hidden from other invocations.
const VISIBILITY_S: u32 = 60;
/// A message delivered more often than this is set aside (DESIGN: above 5).
const MAX_DELIVERIES: u32 = 5;
/// How long a drain lease lasts; longer than an invocation may run (the host stops it at 30 s).
const LEASE_MS: u64 = 45_000;
/// Rounds of lease, drain, release, look again, for one invocation.
const MAX_LEASES: usize = 3;
/// Effects left in the outbox this long are carried out by the tick (younger ones may be in the
/// hands of the invocation that decided them).
const RETRY_AGE_MS: u64 = 10_000;
/// Bound on effect → outcome → effect chains for one event.
const MAX_ROUNDS: usize = 16;
pub(crate) const LOG: Log = Log::new("reactions");

/// An input to the state, with the id of the event that led to it (for the logs).
type Caused = (Input, String);

#[derive(Default, serde::Serialize)]
pub(crate) struct Report {
    /// Another invocation held the drain lease; this one did nothing.
    pub busy: bool,
    pub processed: u32,
    pub poisoned: u32,
    pub effects_done: u32,
    /// Effects that failed and wait for a retry.
    pub effects_failed: u32,
    /// Effects that could never succeed, or failed too often: logged and removed.
    pub effects_given_up: u32,
}

pub(crate) async fn run(config: &Config, tick: bool) -> anyhow::Result<Report> {
    let owner = lease_owner();
    let mut drain = Drain {
        config,
        stored: store::load(config).await?,
        executor: Executor::new(config),
        report: Report::default(),
    };
    for _ in 0..MAX_LEASES {
        let now = now_ms();
        let leased = store::commit(config, &mut drain.stored, |s| {
            s.acquire_lease(&owner, now, LEASE_MS)
        });
        if !leased.await? {
            // Another invocation drains right now and will see what we were kicked for.
            drain.report.busy = true;
            return Ok(drain.report);
        }
        let drained = drain.queues_and_tick(tick).await;
        store::commit(config, &mut drain.stored, |s| s.release_lease(&owner)).await?;
        drained?;
        // A message queued while we held the lease had its kick turned away: look once more.
        if queue_empty(config).await? {
            break;
        }
    }
    Ok(drain.report)
}

/// What a queue may carry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Commands,
    GameEvents,
}

impl Source {
    fn queue(self, config: &Config) -> &Queue {
        match self {
            Source::Commands => &config.commands,
            Source::GameEvents => &config.events,
        }
    }

    fn accepts(self, body: &EventBody) -> bool {
        matches!(
            (self, body),
            (Source::Commands, EventBody::Command(_)) | (Source::GameEvents, EventBody::Game(_))
        )
    }
}

const SOURCES: [Source; 2] = [Source::Commands, Source::GameEvents];

/// Whether both queues are empty (peeking takes nothing).
async fn queue_empty(config: &Config) -> anyhow::Result<bool> {
    for source in SOURCES {
        let response = send(source.queue(config).peek_messages(1, SystemTime::now())).await?;
        check(&response).context("peek messages")?;
        if !parse_peeked(response.body())?.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A name for this invocation in the drain lease.
fn lease_owner() -> String {
    let mut bytes = [0u8; 8];
    // Without randomness a time-based name still tells invocations apart well enough.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = now_ms().to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One invocation's draining: the state as last read or written, and what carries effects out.
struct Drain<'a> {
    config: &'a Config,
    stored: Stored,
    executor: Executor<'a>,
    report: Report,
}

impl Drain<'_> {
    async fn queues_and_tick(&mut self, tick: bool) -> anyhow::Result<()> {
        for source in SOURCES {
            self.queue(source).await?;
        }
        if tick {
            let now = now_ms();
            let id = format!("tick-{now}");
            let tick = Envelope::new(
                id.clone(),
                self.config.server_id.clone(),
                now,
                EventBody::Tick,
            );
            self.process(vec![(Input::Event(Box::new(tick)), id)])
                .await?;
            // Effects an earlier invocation could not finish; what they answer counts as much.
            let due = self.stored.state.due_effects(now, RETRY_AGE_MS);
            let outcomes = self.run_effects(due).await?;
            self.process(outcomes).await?;
        }
        Ok(())
    }

    async fn queue(&mut self, source: Source) -> anyhow::Result<()> {
        let queue = source.queue(self.config);
        for _ in 0..MAX_BATCHES {
            let request = queue.get_messages(BATCH, VISIBILITY_S, SystemTime::now());
            let response = send(request).await?;
            check(&response).context("get messages")?;
            let messages = parse_messages(response.body())?;
            if messages.is_empty() {
                break;
            }
            for message in messages {
                self.take(source, message).await?;
            }
        }
        Ok(())
    }

    /// Applies one queue message and deletes it; a storage failure leaves it for redelivery.
    async fn take(&mut self, source: Source, message: ReceivedMessage) -> anyhow::Result<()> {
        match decode(self.config, source, &message) {
            Ok(envelope) => {
                let id = envelope.id.clone();
                let what = match &envelope.body {
                    EventBody::Command(command) => format!("/{}", command.kind.name()),
                    body => body.name().to_owned(),
                };
                let queue = source.queue(self.config).name();
                LOG.info(Some(&id), format_args!("taken from `{queue}`: {what}"));
                self.process(vec![(Input::Event(Box::new(envelope)), id)])
                    .await?;
                self.report.processed += 1;
            }
            Err(reason) => {
                self.set_aside(&message, &reason).await?;
                self.report.poisoned += 1;
            }
        }
        let queue = source.queue(self.config);
        let response = send(queue.delete_message(&message, SystemTime::now())).await?;
        check(&response).context("delete message")?;
        Ok(())
    }

    /// Moves a message to the poison queue and says so, in the log and in Discord.
    async fn set_aside(&mut self, message: &ReceivedMessage, reason: &str) -> anyhow::Result<()> {
        LOG.warn(
            None,
            format_args!("queue message {} set aside: {reason}", message.id),
        );
        let poison = self
            .config
            .poison
            .put_message(&message.text, SystemTime::now());
        let response = send(poison).await?;
        check(&response).context("put message on the poison queue")?;
        if let Some(channel_id) = self.stored.state.channel_id.clone() {
            let content = format!(
                "⚠️ An event could not be processed and was set aside for the server owner ({reason})."
            );
            let notice = EffectKind::PostMessage {
                channel_id,
                content,
            };
            if !matches!(self.executor.execute(&notice, "").await, Outcome::Done(_)) {
                LOG.warn(None, "could not report the poison message in Discord");
            }
        }
        Ok(())
    }

    /// Applies inputs, carries out their effects, and feeds the outcomes back in.
    async fn process(&mut self, mut inputs: Vec<Caused>) -> anyhow::Result<()> {
        for _ in 0..MAX_ROUNDS {
            let Some((input, cause)) = inputs.pop() else {
                return Ok(());
            };
            let now = now_ms();
            let applied = store::commit(self.config, &mut self.stored, |state| {
                state.apply_caused(input.clone(), &cause, now)
            })
            .await?;
            for old in &applied.dropped {
                LOG.warn(
                    Some(&old.cause),
                    format_args!(
                        "effect {} ({}) dropped from a full outbox",
                        old.id,
                        old.kind.name()
                    ),
                );
            }
            inputs.extend(self.run_effects(applied.effects).await?);
        }
        LOG.warn(
            None,
            format_args!("stopped following effects after {MAX_ROUNDS} rounds"),
        );
        Ok(())
    }

    /// Carries out effects in order. One that failed waits in the outbox for the tick (when the
    /// service said, or after a backoff); one that can never succeed is logged and removed.
    async fn run_effects(&mut self, effects: Vec<Effect>) -> anyhow::Result<Vec<Caused>> {
        let mut done = Vec::new();
        let mut later = Vec::new();
        let mut never = Vec::new();
        let mut inputs = Vec::new();
        for effect in effects {
            let (id, kind, cause) = (&effect.id, effect.kind.name(), Some(effect.cause.as_str()));
            match self.executor.execute(&effect.kind, &effect.cause).await {
                Outcome::Done(input) => {
                    LOG.info(cause, format_args!("effect {id} ({kind}) done"));
                    inputs.extend(input.map(|input| (input, effect.cause.clone())));
                    done.push(effect.id);
                    self.report.effects_done += 1;
                }
                Outcome::Later { after_ms, why } => {
                    LOG.warn(
                        cause,
                        format_args!("effect {id} ({kind}) failed, will retry: {why}"),
                    );
                    later.push((effect.id, after_ms));
                    self.report.effects_failed += 1;
                }
                Outcome::Never(why) => never.push((effect.id, why)),
            }
        }
        if done.is_empty() && later.is_empty() && never.is_empty() {
            return Ok(inputs);
        }
        let now = now_ms();
        let given_up = store::commit(self.config, &mut self.stored, |state| {
            state.done(&done);
            let mut gone: Vec<(Effect, String)> = Vec::new();
            for (id, after_ms) in &later {
                gone.extend(
                    state
                        .retry_later(id, now, *after_ms)
                        .map(|e| (e, "it failed too many times".to_owned())),
                );
            }
            for (id, why) in &never {
                gone.extend(state.give_up(id).map(|e| (e, why.clone())));
            }
            gone
        })
        .await?;
        for (effect, why) in given_up {
            LOG.error(
                Some(&effect.cause),
                format_args!(
                    "gave up effect {} ({}): {why}",
                    effect.id,
                    effect.kind.name()
                ),
            );
            self.report.effects_given_up += 1;
        }
        Ok(inputs)
    }
}

fn decode(config: &Config, source: Source, message: &ReceivedMessage) -> Result<Envelope, String> {
    if message.dequeue_count > MAX_DELIVERIES {
        return Err(format!(
            "delivered {} times without success",
            message.dequeue_count
        ));
    }
    let payload = message.payload().map_err(|e| e.to_string())?;
    let envelope = Envelope::from_json(&payload).map_err(|e| e.to_string())?;
    if envelope.server != config.server_id {
        return Err(format!("event for another server `{}`", envelope.server));
    }
    if !source.accepts(&envelope.body) {
        return Err(format!(
            "a {} does not belong on the `{}` queue",
            envelope.body.name(),
            source.queue(config).name()
        ));
    }
    Ok(envelope)
}
