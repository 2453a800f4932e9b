//! The conversation as a player sees it in the Discord channel, in time order.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use heimdall_fakes::{DiscordMessage, MessageKind};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub at: Duration,
    pub who: String,
    pub text: String,
}

pub struct Transcript {
    start: Instant,
    entries: Vec<Entry>,
    /// Interaction token → the command it answered, to label edits.
    commands: HashMap<String, String>,
}

impl Transcript {
    pub fn new(start: Instant) -> Transcript {
        Transcript {
            start,
            entries: Vec::new(),
            commands: HashMap::new(),
        }
    }

    pub fn command(&mut self, user: &str, command: &str, token: &str) {
        self.commands.insert(token.to_owned(), command.to_owned());
        self.push(Instant::now(), user.to_owned(), command.to_owned());
    }

    pub fn reply(&mut self, command: &str, text: &str) {
        self.push(
            Instant::now(),
            format!("Heimdall (reply to {command})"),
            text.to_owned(),
        );
    }

    pub fn note(&mut self, text: &str) {
        self.push(Instant::now(), "·".into(), text.to_owned());
    }

    /// Adds what the app sent to Discord: edits of replies and channel messages.
    pub fn add_discord(&mut self, messages: &[DiscordMessage]) {
        for message in messages {
            let who = match &message.kind {
                MessageKind::ReplyEdit { interaction_token } => {
                    let command = self
                        .commands
                        .get(interaction_token)
                        .map_or("?", String::as_str);
                    format!("Heimdall (reply to {command}, edited)")
                }
                MessageKind::ChannelMessage { .. } => "Heimdall in #valheim".to_owned(),
            };
            self.push(message.at, who, message.content.clone());
        }
    }

    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = self.entries.clone();
        entries.sort_by_key(|e| e.at);
        entries
    }

    fn push(&mut self, at: Instant, who: String, text: String) {
        let at = at.saturating_duration_since(self.start);
        self.entries.push(Entry { at, who, text });
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in self.entries() {
            writeln!(
                f,
                "[{:>6.2}s] {}: {}",
                entry.at.as_secs_f64(),
                entry.who,
                entry.text
            )?;
        }
        Ok(())
    }
}
