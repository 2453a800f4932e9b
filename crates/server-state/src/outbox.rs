//! The outbox: effects decided but not yet carried out. An effect stays until the shell reports
//! it done, so it survives a crash between the state write and the call; an effect the shell
//! could not carry out is retried with a growing delay (or after what the service asked), and
//! one that is given up is handed back to the shell to be logged: nothing leaves silently.

use heimdall_events::InteractionReply;
use serde::{Deserialize, Serialize};

use crate::ServerState;

/// A cap on the outbox, so that an unreachable Discord cannot grow the entity without bound.
const MAX_OUTBOX: usize = 32;
/// Attempts at one effect before it is given up (about 20 minutes with the delays below).
const MAX_ATTEMPTS: u32 = 10;
const FIRST_DELAY_MS: u64 = 2_000;
const MAX_DELAY_MS: u64 = 5 * 60_000;

/// Something the shell must do. `id` is stable, so the shell can report it done after a retry.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    pub id: String,
    /// When it was decided (ms since the Unix epoch): only effects this old are retried, so
    /// that a retry never races the invocation that is carrying the effect out right now.
    pub at_ms: u64,
    pub kind: EffectKind,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not to be tried again before this (ms since the Unix epoch).
    #[serde(default)]
    pub not_before_ms: u64,
    /// The id of the event that led to it, so that the logs of a command or a game event
    /// show what it caused, retries on later ticks included.
    #[serde(default)]
    pub cause: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "effect", rename_all = "kebab-case")]
pub enum EffectKind {
    /// Edit the reply to a slash command (progress of /start, /stop, the answer to /status).
    /// When the reply cannot be edited any more (its token lasts 15 minutes), the content goes
    /// to `channel_id` instead.
    EditReply {
        reply: InteractionReply,
        content: String,
        #[serde(default)]
        channel_id: Option<String>,
    },
    /// Post in the channel where the server was last commanded.
    PostMessage { channel_id: String, content: String },
    /// Ask the scaler for this capacity (and VM size, when it must change); the answer comes
    /// back as [`crate::Input::Scaled`].
    Scale {
        capacity: u32,
        #[serde(default)]
        size: Option<String>,
    },
    /// Ask the scaler how the operation goes; the answer comes back as [`crate::Input::Scaled`].
    PollOperation { capacity: u32, poll_url: String },
    /// Ask the scaler for the instance; the answer comes back as [`crate::Input::Instance`].
    LookupInstance,
    /// Put a "save and stop" message on the control queue for the agent on `vm_name`. `id` is
    /// the control message's id, the same on every retry.
    SaveAndStop {
        id: String,
        vm_name: Option<String>,
        requested_by: String,
    },
}

impl EffectKind {
    /// The kind's name, for logs (an effect's fields may hold an interaction token).
    pub fn name(&self) -> &'static str {
        match self {
            EffectKind::EditReply { .. } => "edit-reply",
            EffectKind::PostMessage { .. } => "post-message",
            EffectKind::Scale { .. } => "scale",
            EffectKind::PollOperation { .. } => "poll-operation",
            EffectKind::LookupInstance => "lookup-instance",
            EffectKind::SaveAndStop { .. } => "save-and-stop",
        }
    }

    pub(crate) fn is_scaler_call(&self) -> bool {
        matches!(
            self,
            EffectKind::Scale { .. }
                | EffectKind::PollOperation { .. }
                | EffectKind::LookupInstance
        )
    }

    fn is_message(&self) -> bool {
        matches!(
            self,
            EffectKind::EditReply { .. } | EffectKind::PostMessage { .. }
        )
    }
}

/// What applying one input decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// New effects, also in the outbox.
    pub effects: Vec<Effect>,
    /// Old messages pushed out of a full outbox, for the shell to log.
    pub dropped: Vec<Effect>,
}

/// `FIRST_DELAY_MS`, doubled with every attempt, at most `MAX_DELAY_MS`.
pub(crate) fn backoff_ms(attempts: u32) -> u64 {
    let doublings = attempts.saturating_sub(1).min(20);
    FIRST_DELAY_MS
        .saturating_mul(1 << doublings)
        .min(MAX_DELAY_MS)
}

impl ServerState {
    /// The shell carried out these effects: drop them from the outbox.
    pub fn done(&mut self, ids: &[String]) {
        self.outbox.retain(|e| !ids.contains(&e.id));
    }

    /// Effects to carry out now: decided at least `age_ms` ago, and not waiting for a retry.
    pub fn due_effects(&self, now_ms: u64, age_ms: u64) -> Vec<Effect> {
        self.outbox
            .iter()
            .filter(|e| now_ms.saturating_sub(e.at_ms) >= age_ms && e.not_before_ms <= now_ms)
            .cloned()
            .collect()
    }

    /// The effect failed and may succeed later: it waits `after_ms` when the service said how
    /// long, else a growing delay. After too many attempts it is given up and returned.
    pub fn retry_later(&mut self, id: &str, now_ms: u64, after_ms: Option<u64>) -> Option<Effect> {
        let i = self.outbox.iter().position(|e| e.id == id)?;
        let effect = &mut self.outbox[i];
        effect.attempts += 1;
        if effect.attempts >= MAX_ATTEMPTS {
            return Some(self.outbox.remove(i));
        }
        let delay = after_ms.unwrap_or(0).max(backoff_ms(effect.attempts));
        effect.not_before_ms = now_ms.saturating_add(delay);
        None
    }

    /// The effect can never succeed (the service refused it for good): remove and return it.
    pub fn give_up(&mut self, id: &str) -> Option<Effect> {
        let i = self.outbox.iter().position(|e| e.id == id)?;
        Some(self.outbox.remove(i))
    }

    pub(crate) fn scaler_call_queued(&self) -> bool {
        self.outbox.iter().any(|e| e.kind.is_scaler_call())
    }

    /// A fresh number for something this state creates (effects, control messages).
    pub(crate) fn next_id(&mut self) -> u64 {
        self.effects_created += 1;
        self.effects_created
    }

    pub(crate) fn push(&mut self, kind: EffectKind) {
        let cause = self.cause.clone();
        self.push_for(kind, cause);
    }

    /// As [`ServerState::push`], for an effect that another event than the current one led to.
    pub(crate) fn push_for(&mut self, kind: EffectKind, cause: String) {
        let n = self.next_id();
        if self.outbox.len() >= MAX_OUTBOX {
            // Keep scaler and control calls; push out the oldest message, stale by now anyway.
            if let Some(i) = self.outbox.iter().position(|e| e.kind.is_message()) {
                let old = self.outbox.remove(i);
                self.dropped.push(old);
            }
        }
        let id = format!("e{n}");
        self.pushed.push(id.clone());
        self.outbox.push(Effect {
            id,
            at_ms: self.now_ms,
            kind,
            attempts: 0,
            not_before_ms: 0,
            cause,
        });
    }

    /// Edits the reply of the /start or /stop in progress, if there is one.
    pub(crate) fn progress(&mut self, content: String) {
        if let Some(reply) = self.progress_reply.clone() {
            self.edit(reply, content);
        }
    }

    /// Edits the reply in progress, or says it in the channel when there is none.
    pub(crate) fn tell(&mut self, content: String) {
        if self.progress_reply.is_some() {
            self.progress(content);
        } else {
            self.announce(content);
        }
    }

    pub(crate) fn edit(&mut self, reply: InteractionReply, content: String) {
        let channel_id = self.channel_id.clone();
        self.push(EffectKind::EditReply {
            reply,
            content,
            channel_id,
        });
    }

    pub(crate) fn announce(&mut self, content: String) {
        if let Some(channel_id) = self.channel_id.clone() {
            self.push(EffectKind::PostMessage {
                channel_id,
                content,
            });
        }
    }
}
