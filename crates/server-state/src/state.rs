use std::collections::VecDeque;

use heimdall_events::{
    Command, CommandKind, Envelope, EventBody, GameEvent, InteractionReply, ServerReady,
};
use serde::{Deserialize, Serialize};

use crate::messages;

/// How many recent event ids are remembered to drop redeliveries.
const REMEMBERED_EVENTS: usize = 64;
/// A cap on the outbox, so that an unreachable Discord cannot grow the entity without bound.
const MAX_OUTBOX: usize = 32;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    #[default]
    Stopped,
    /// Capacity 1 requested; waiting for Azure.
    Starting,
    /// The VM exists; the game is loading the world.
    Booting,
    Running,
    /// Capacity 0 requested.
    Stopping,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stopped => "stopped",
            Status::Starting => "starting",
            Status::Booting => "booting",
            Status::Running => "running",
            Status::Stopping => "stopping",
        }
    }
}

/// A scale operation: requested, then (once Azure accepted it) followed through its URL.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub capacity: u32,
    /// The `Azure-AsyncOperation` URL; `None` until the scale request was accepted.
    pub poll_url: Option<String>,
}

/// Something the shell must do. `id` is stable, so the shell can report it done after a retry.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    pub id: String,
    /// When it was decided (ms since the Unix epoch): only stale effects are retried, so that a
    /// retry never races the invocation that is carrying the effect out right now.
    pub at_ms: u64,
    pub kind: EffectKind,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "effect", rename_all = "kebab-case")]
pub enum EffectKind {
    /// Edit the reply to a slash command (progress of /start, /stop, the answer to /status).
    EditReply {
        reply: InteractionReply,
        content: String,
    },
    /// Post in the channel where the server was last commanded.
    PostMessage { channel_id: String, content: String },
    /// Ask the scaler for this capacity; its answer comes back as [`Input::Scaled`].
    Scale { capacity: u32 },
    /// Ask the scaler how the operation goes; the answer comes back as [`Input::Scaled`].
    PollOperation { poll_url: String },
    /// Ask the scaler for the instance's address; the answer comes back as [`Input::Instance`].
    LookupInstance,
}

/// What the scaler answered to a scale request or a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleOutcome {
    Succeeded,
    InProgress { poll_url: String },
    Failed { message: String },
}

/// What changes the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A message from the queue.
    Event(Box<Envelope>),
    /// The outcome of a `Scale` or `PollOperation` effect.
    Scaled(ScaleOutcome),
    /// The outcome of `LookupInstance`.
    Instance { public_ip: Option<String> },
}

/// Which invocation of reactions is draining the queue. One at a time: concurrent kicks would
/// otherwise all fight over this one entity's ETag and mostly lose.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    /// After this (ms since the Unix epoch) the lease is free again, in case its owner died.
    pub until_ms: u64,
}

/// Everything reactions keeps about one game server (stored as one Table entity).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerState {
    pub status: Status,
    pub public_ip: Option<String>,
    pub game_port: u16,
    pub world: Option<String>,
    pub join_code: Option<String>,
    /// Characters online, in the order they joined.
    pub players: Vec<String>,
    pub operation: Option<Operation>,
    /// The reply of the /start or /stop in progress, edited as it advances.
    pub progress_reply: Option<InteractionReply>,
    /// Where game events are announced: the channel of the latest command.
    pub channel_id: Option<String>,
    pub recent_events: VecDeque<String>,
    /// Effects decided but not yet reported done by the shell.
    pub outbox: Vec<Effect>,
    /// Counts effects ever created, to give each a unique id.
    pub effects_created: u64,
    #[serde(default)]
    pub drain_lease: Option<Lease>,
    /// The time of the input being applied (not stored).
    #[serde(skip)]
    now_ms: u64,
}

impl ServerState {
    pub fn new(game_port: u16) -> ServerState {
        ServerState {
            game_port,
            ..ServerState::default()
        }
    }

    /// Applies an input; the new effects are appended to the outbox and also returned.
    /// A queue event seen before returns no effects and changes nothing.
    pub fn apply(&mut self, input: Input, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        let before = self.outbox.len();
        match input {
            Input::Event(envelope) => self.event(*envelope),
            Input::Scaled(outcome) => self.scaled(outcome),
            Input::Instance { public_ip } => {
                if let Some(ip) = public_ip {
                    self.vm_up(ip);
                }
            }
        }
        // The time is for this input only; leaving it would make every state look changed.
        self.now_ms = 0;
        self.outbox[before..].to_vec()
    }

    /// The shell carried out these effects: drop them from the outbox.
    pub fn done(&mut self, ids: &[String]) {
        self.outbox.retain(|e| !ids.contains(&e.id));
    }

    /// Effects decided at least `age_ms` ago and still not done: the shell's retries.
    pub fn stale_effects(&self, now_ms: u64, age_ms: u64) -> Vec<Effect> {
        self.outbox
            .iter()
            .filter(|e| now_ms.saturating_sub(e.at_ms) >= age_ms)
            .cloned()
            .collect()
    }

    /// Takes the drain lease for `owner` unless someone else holds it unexpired.
    pub fn acquire_lease(&mut self, owner: &str, now_ms: u64, ttl_ms: u64) -> bool {
        if let Some(lease) = &self.drain_lease {
            if lease.owner != owner && lease.until_ms > now_ms {
                return false;
            }
        }
        self.drain_lease = Some(Lease {
            owner: owner.to_owned(),
            until_ms: now_ms + ttl_ms,
        });
        true
    }

    /// Gives the drain lease back, if `owner` still holds it.
    pub fn release_lease(&mut self, owner: &str) {
        if self.drain_lease.as_ref().is_some_and(|l| l.owner == owner) {
            self.drain_lease = None;
        }
    }

    /// Whether this event id was applied already.
    fn has_seen(&self, event_id: &str) -> bool {
        self.recent_events.iter().any(|id| id == event_id)
    }

    fn event(&mut self, envelope: Envelope) {
        if self.has_seen(&envelope.id) {
            return;
        }
        // Ticks change nothing when repeated; remembering them would push real ids out.
        if !matches!(envelope.body, EventBody::Tick) {
            self.remember(envelope.id);
        }
        match envelope.body {
            EventBody::Command(command) => self.command(command),
            EventBody::Game(event) => self.game(event),
            EventBody::Tick => self.tick(),
        }
    }

    fn remember(&mut self, id: String) {
        self.recent_events.push_back(id);
        while self.recent_events.len() > REMEMBERED_EVENTS {
            self.recent_events.pop_front();
        }
    }

    fn command(&mut self, command: Command) {
        self.channel_id = Some(command.channel_id.clone());
        match command.kind {
            CommandKind::Start => self.start(command),
            CommandKind::Stop => self.stop(command),
            CommandKind::Status => {
                let content = messages::status(self);
                self.edit(command.reply, content);
            }
        }
    }

    fn start(&mut self, command: Command) {
        if self.status != Status::Stopped {
            let content = messages::already(self);
            return self.edit(command.reply, content);
        }
        self.status = Status::Starting;
        self.request_capacity(1);
        self.progress_reply = Some(command.reply.clone());
        self.edit(command.reply, messages::starting(&command.requester.name));
    }

    fn stop(&mut self, command: Command) {
        if matches!(self.status, Status::Stopped | Status::Stopping) {
            let content = messages::already(self);
            return self.edit(command.reply, content);
        }
        self.status = Status::Stopping;
        self.request_capacity(0);
        self.progress_reply = Some(command.reply.clone());
        self.edit(command.reply, messages::stopping(&command.requester.name));
    }

    fn request_capacity(&mut self, capacity: u32) {
        self.operation = Some(Operation {
            capacity,
            poll_url: None,
        });
        self.push(EffectKind::Scale { capacity });
    }

    /// The tick moves an operation along: polls it, or re-sends a scale request that did not
    /// get through. Scale requests are idempotent (the scaler compares with the current capacity).
    fn tick(&mut self) {
        let Some(operation) = self.operation.clone() else {
            return;
        };
        if self.outbox.iter().any(|e| is_scaler_call(&e.kind)) {
            return; // still queued for the shell
        }
        match operation.poll_url {
            Some(poll_url) => self.push(EffectKind::PollOperation { poll_url }),
            None => self.push(EffectKind::Scale {
                capacity: operation.capacity,
            }),
        }
    }

    fn scaled(&mut self, outcome: ScaleOutcome) {
        let Some(operation) = self.operation.as_mut() else {
            return; // a late answer for an operation already settled
        };
        match outcome {
            ScaleOutcome::InProgress { poll_url } => operation.poll_url = Some(poll_url),
            ScaleOutcome::Succeeded => {
                let capacity = operation.capacity;
                self.operation = None;
                if capacity > 0 {
                    self.push(EffectKind::LookupInstance);
                } else {
                    self.stopped();
                }
            }
            ScaleOutcome::Failed { message } => {
                let capacity = operation.capacity;
                self.operation = None;
                self.status = if capacity > 0 {
                    Status::Stopped
                } else {
                    Status::Running
                };
                self.progress(messages::scale_failed(capacity, &message));
            }
        }
    }

    fn stopped(&mut self) {
        self.status = Status::Stopped;
        self.public_ip = None;
        self.join_code = None;
        self.players.clear();
        self.progress(messages::stopped());
        self.progress_reply = None;
    }

    fn vm_up(&mut self, ip: String) {
        if !matches!(self.status, Status::Starting | Status::Booting) {
            return;
        }
        if self.status == Status::Booting && self.public_ip.as_deref() == Some(ip.as_str()) {
            return; // the agent and the scaler both report the address; say it once
        }
        self.status = Status::Booting;
        self.public_ip = Some(ip);
        let content = messages::vm_up(self);
        self.progress(content);
    }

    fn game(&mut self, event: GameEvent) {
        match event {
            GameEvent::VmUp(up) => self.vm_up(up.public_ip),
            GameEvent::ServerReady(ready) => self.ready(ready),
            GameEvent::PlayerJoined(player) => {
                self.players.push(player.character.clone());
                let content = messages::joined(&player.character, self.players.len());
                self.announce(content);
            }
            GameEvent::PlayerLeft(player) => {
                if let Some(i) = self.players.iter().position(|p| *p == player.character) {
                    self.players.remove(i);
                }
                let content = messages::left(&player.character, self.players.len());
                self.announce(content);
            }
            GameEvent::WorldSaved(_) => {}
            GameEvent::EvictionComing(_) => self.announce(messages::eviction().into()),
        }
    }

    fn ready(&mut self, ready: ServerReady) {
        match self.status {
            Status::Stopping | Status::Stopped => return,
            // Crossplay servers announce their join code in a second "ready": an update.
            Status::Running => return self.join_code_update(ready.join_code),
            Status::Starting | Status::Booting => {}
        }
        self.status = Status::Running;
        self.world = ready.world_name.or(self.world.take());
        self.join_code = ready.join_code;
        let content = messages::ready(self);
        self.progress(content.clone());
        self.progress_reply = None;
        self.announce(content);
    }

    fn join_code_update(&mut self, join_code: Option<String>) {
        if join_code.is_none() || join_code == self.join_code {
            return;
        }
        self.join_code = join_code;
        let content = messages::ready(self);
        self.announce(content);
    }

    /// Edits the reply of the /start or /stop in progress, if there is one.
    fn progress(&mut self, content: String) {
        if let Some(reply) = self.progress_reply.clone() {
            self.edit(reply, content);
        }
    }

    fn edit(&mut self, reply: InteractionReply, content: String) {
        self.push(EffectKind::EditReply { reply, content });
    }

    fn announce(&mut self, content: String) {
        if let Some(channel_id) = self.channel_id.clone() {
            self.push(EffectKind::PostMessage {
                channel_id,
                content,
            });
        }
    }

    fn push(&mut self, kind: EffectKind) {
        self.effects_created += 1;
        if self.outbox.len() >= MAX_OUTBOX {
            // Keep scaler calls; drop the oldest message, which is stale by now anyway.
            if let Some(i) = self.outbox.iter().position(|e| !is_scaler_call(&e.kind)) {
                self.outbox.remove(i);
            }
        }
        self.outbox.push(Effect {
            id: format!("e{}", self.effects_created),
            at_ms: self.now_ms,
            kind,
        });
    }
}

fn is_scaler_call(kind: &EffectKind) -> bool {
    matches!(
        kind,
        EffectKind::Scale { .. } | EffectKind::PollOperation { .. } | EffectKind::LookupInstance
    )
}
