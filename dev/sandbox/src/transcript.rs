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
    /// Interaction token → when its reply arrived.
    replies: HashMap<String, Instant>,
}

impl Transcript {
    pub fn new(start: Instant) -> Transcript {
        Transcript {
            start,
            entries: Vec::new(),
            commands: HashMap::new(),
            replies: HashMap::new(),
        }
    }

    pub fn command(&mut self, user: &str, command: &str, token: &str) {
        self.commands.insert(token.to_owned(), command.to_owned());
        self.push(Instant::now(), user.to_owned(), command.to_owned());
    }

    /// The app's answer to a command; `private` when only the one who asked sees it.
    pub fn reply(&mut self, command: &str, token: &str, text: &str, private: bool) {
        let now = Instant::now();
        self.replies.insert(token.to_owned(), now);
        let only_you = if private { ", only you see this" } else { "" };
        self.push(
            now,
            format!("Heimdall (reply to {command}{only_you})"),
            text.to_owned(),
        );
    }

    pub fn note(&mut self, text: &str) {
        self.push(Instant::now(), "·".into(), text.to_owned());
    }

    /// Adds what the app sent to Discord: edits of replies and channel messages. An edit can
    /// reach Discord a moment before the player's side has read the reply it edits; a player
    /// sees the reply first, and so does the transcript.
    pub fn add_discord(&mut self, messages: &[DiscordMessage]) {
        for message in messages {
            let (who, at) = match &message.kind {
                MessageKind::ReplyEdit { interaction_token } => {
                    let command = self
                        .commands
                        .get(interaction_token)
                        .map_or("?", String::as_str);
                    let replied = self.replies.get(interaction_token).copied();
                    (
                        format!("Heimdall (reply to {command}, edited)"),
                        replied.map_or(message.at, |r| r.max(message.at)),
                    )
                }
                MessageKind::ChannelMessage { .. } => {
                    ("Heimdall in #valheim".to_owned(), message.at)
                }
            };
            self.push(at, who, message.content.clone());
        }
    }

    /// In time order; at the same moment, in the order added (a reply before its edits).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_comes_before_its_edits_even_when_the_edit_arrived_first() {
        let start = Instant::now();
        let mut transcript = Transcript::new(start);
        transcript.command("Ada", "/start", "t1");
        let edit = DiscordMessage {
            kind: MessageKind::ReplyEdit {
                interaction_token: "t1".into(),
            },
            content: "⏳ Starting".into(),
            embeds: Vec::new(),
            at: Instant::now(),
        };
        std::thread::sleep(Duration::from_millis(2));
        transcript.reply("/start", "t1", "⏳ /start received", false);
        transcript.add_discord(&[edit]);
        let who: Vec<String> = transcript.entries().into_iter().map(|e| e.who).collect();
        assert_eq!(
            who,
            [
                "Ada",
                "Heimdall (reply to /start)",
                "Heimdall (reply to /start, edited)"
            ]
        );
    }
}
