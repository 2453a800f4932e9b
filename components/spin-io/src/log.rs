//! Structured log lines, one per thing that happened, on stderr (where Spin keeps a component's
//! log): `level=info component=reactions event=<id> msg="..."`. The event id is the queue
//! envelope's, the same one the agent's lines carry, so that one command or game event can be
//! followed through every component with a single grep. Callers pass ids, kinds and outcomes,
//! never a token, a key or a request body.

use std::fmt::Display;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The logger of one component.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    component: &'static str,
}

impl Log {
    pub const fn new(component: &'static str) -> Log {
        Log { component }
    }

    pub fn info(&self, event: Option<&str>, what: impl Display) {
        self.write(Level::Info, event, what);
    }

    pub fn warn(&self, event: Option<&str>, what: impl Display) {
        self.write(Level::Warn, event, what);
    }

    pub fn error(&self, event: Option<&str>, what: impl Display) {
        self.write(Level::Error, event, what);
    }

    fn write(&self, level: Level, event: Option<&str>, what: impl Display) {
        eprintln!("{}", line(level, self.component, event, &what.to_string()));
    }
}

/// One logfmt line; the message is quoted, so a line is always one line.
fn line(level: Level, component: &str, event: Option<&str>, what: &str) -> String {
    let mut line = format!("level={} component={component}", level.as_str());
    if let Some(event) = event.filter(|e| !e.is_empty()) {
        line.push_str(" event=");
        line.push_str(&quote_if_needed(event));
    }
    line.push_str(" msg=");
    line.push_str(&quoted(what));
    line
}

fn quote_if_needed(value: &str) -> String {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        value.to_owned()
    } else {
        quoted(value)
    }
}

fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_level_component_event_and_message() {
        assert_eq!(
            line(
                Level::Info,
                "reactions",
                Some("ev-1"),
                "applied command start"
            ),
            r#"level=info component=reactions event=ev-1 msg="applied command start""#
        );
        assert_eq!(
            line(Level::Warn, "scaler", None, "a \"quoted\"\nsecond line"),
            r#"level=warn component=scaler msg="a \"quoted\"\nsecond line""#
        );
        assert_eq!(
            line(Level::Error, "x", Some("a b"), ""),
            r#"level=error component=x event="a b" msg="""#
        );
    }
}
