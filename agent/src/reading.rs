//! Reading the game log into events: announce the VM, then parse every line, and emit the events
//! of the lines past the place the agent had got to before (see [`crate::position`]).

use heimdall_events::GameEvent;
use heimdall_valheim_log::LogParser;

use crate::backoff::Backoff;
use crate::follow::Follower;
use crate::imds;
use crate::position::{LinePosition, PositionFile, Stamper};
use crate::Agent;

/// Pause between polls of an idle log grows from this…
const IDLE_MIN: std::time::Duration = std::time::Duration::from_millis(10);
/// …to this, so that a quiet log costs a few wake-ups a second.
const IDLE_MAX: std::time::Duration = std::time::Duration::from_millis(250);

/// Announces the VM, then turns log lines into spooled events until `stop`.
pub(crate) fn follow(agent: &Agent, mut follower: Follower) {
    let Some(vm) = imds::vm_up(&agent.config, &agent.http, &agent.stop) else {
        return;
    };
    tracing::info!(
        server = agent.config.server_id,
        vm = vm.vm_name,
        ip = vm.public_ip.as_deref().unwrap_or("(from Resource Manager)"),
        "the VM is up"
    );
    let _ = agent.vm_name.set(vm.vm_name.clone());
    agent.emit_new(GameEvent::VmUp(vm));

    let positions = PositionFile::new(&agent.config.state_dir);
    let mut reading = Reading::new(positions.load());
    let mut generation = follower.generation();
    let mut idle = Backoff::new(IDLE_MIN, IDLE_MAX);
    while !agent.stopped() {
        let lines = follower.poll(&mut |line| reading.line(line, agent, &positions));
        if follower.generation() != generation {
            // The command started again: its output is the log from the beginning.
            generation = follower.generation();
            reading.restart();
        }
        if lines > 0 {
            idle.reset();
            let online: Vec<String> = reading.parser.online().map(str::to_owned).collect();
            *agent.players.lock().unwrap_or_else(|e| e.into_inner()) = online;
        } else {
            if follower.at_end() {
                // Everything written so far is read and its events spooled.
                agent.stopper.read_to_end();
            }
            follower.wait(&agent.stop, idle.next_delay());
        }
    }
}

/// One read of the log from its start: the parser and the line numbering.
struct Reading {
    parser: LogParser,
    stamper: Stamper,
    /// The last place whose events were emitted, by this run or one before it.
    emitted: Option<LinePosition>,
}

impl Reading {
    fn new(emitted: Option<LinePosition>) -> Reading {
        if let Some(at) = emitted {
            tracing::info!(
                timestamp_ns = at.timestamp_ns,
                ordinal = at.ordinal,
                "rereading the log; events up to here were sent before"
            );
        }
        Reading {
            parser: LogParser::new(),
            stamper: Stamper::default(),
            emitted,
        }
    }

    fn restart(&mut self) {
        self.parser = LogParser::new();
        self.stamper = Stamper::default();
    }

    fn line(&mut self, raw: &str, agent: &Agent, positions: &PositionFile) {
        let (position, text) = self.stamper.stamp(raw);
        // Every line is parsed, so that the parser knows who is online and the world's name
        // even when the events themselves were sent before.
        let events = self.parser.line(text);
        if events.is_empty() || self.emitted.is_some_and(|at| position <= at) {
            return;
        }
        for (index, event) in events.into_iter().enumerate() {
            let save = matches!(event, GameEvent::WorldSaved(_));
            agent.emit(position.event_id(index), event);
            // Only once it is spooled: the stopper's "game stopped" must come after it.
            if save {
                agent.stopper.saw_save();
            }
        }
        self.emitted = Some(position);
        if let Err(error) = positions.save(position) {
            // The events are spooled; a reread after a restart repeats them under the same ids.
            tracing::warn!("saving the log position: {error}");
        }
    }
}
