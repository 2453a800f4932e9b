//! Who may do what: everyone may ask for /status; /start and /stop can be limited to one guild
//! and to members with one of the operator roles.

use heimdall_events::{Command, CommandKind};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Only commands from this guild are taken (any guild when `None`).
    pub guild_id: Option<String>,
    /// Roles allowed to start and stop (anyone when empty).
    pub operator_roles: Vec<String>,
}

impl Access {
    /// From the comma-separated settings; blank means "no restriction".
    pub fn from_settings(guild_id: &str, operator_roles: &str) -> Access {
        Access {
            guild_id: Some(guild_id.trim().to_owned()).filter(|g| !g.is_empty()),
            operator_roles: operator_roles
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// `Err` carries the text shown, privately, to the user who was refused.
    pub fn check(&self, command: &Command) -> Result<(), String> {
        if let Some(guild) = &self.guild_id {
            if command.guild_id.as_ref() != Some(guild) {
                return Err("This bot only takes commands in its own server.".into());
            }
        }
        let operator_only = matches!(command.kind, CommandKind::Start | CommandKind::Stop);
        let is_operator = self.operator_roles.is_empty()
            || command
                .requester
                .roles
                .iter()
                .any(|r| self.operator_roles.contains(r));
        if operator_only && !is_operator {
            return Err(format!(
                "You need an operator role to /{}. Anyone may use /status.",
                command.kind.name()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_events::{InteractionReply, Requester};

    fn command(kind: CommandKind, guild: &str, roles: &[&str]) -> Command {
        Command {
            kind,
            requester: Requester {
                user_id: "u".into(),
                name: "Ada".into(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
            },
            guild_id: Some(guild.into()),
            channel_id: "c".into(),
            reply: InteractionReply {
                application_id: "a".into(),
                interaction_id: "i".into(),
                token: "t".into(),
            },
        }
    }

    #[test]
    fn open_by_default() {
        let access = Access::from_settings(" ", "");
        assert_eq!(access, Access::default());
        assert!(access.check(&command(CommandKind::Start, "g", &[])).is_ok());
    }

    #[test]
    fn operators_only_for_start_and_stop() {
        let access = Access::from_settings("g", "admin, mod");
        assert!(access
            .check(&command(CommandKind::Start, "g", &["mod"]))
            .is_ok());
        assert!(access
            .check(&command(CommandKind::Stop, "g", &["x"]))
            .is_err());
        assert!(access
            .check(&command(CommandKind::Status, "g", &[]))
            .is_ok());
        assert!(access
            .check(&command(CommandKind::Status, "other", &[]))
            .is_err());
    }
}
