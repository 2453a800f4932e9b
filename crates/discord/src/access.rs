//! Who may do what: everyone may ask for /status and /help; /start and /stop can be limited to
//! members with one of the operator roles; all of them can be limited to one guild.

use heimdall_events::Command;

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
        self.check_guild(command.guild_id.as_deref())?;
        let is_operator = self.operator_roles.is_empty()
            || command
                .requester
                .roles
                .iter()
                .any(|r| self.operator_roles.contains(r));
        if !is_operator {
            return Err(format!(
                "You need an operator role to /{}. Anyone may use /status and /help.",
                command.kind.name()
            ));
        }
        Ok(())
    }

    /// Commands from another guild are refused: the server's address is for its own members.
    pub fn check_guild(&self, guild_id: Option<&str>) -> Result<(), String> {
        match &self.guild_id {
            Some(guild) if guild_id != Some(guild.as_str()) => {
                Err("This bot only takes commands in its own server.".into())
            }
            _ => Ok(()),
        }
    }

    /// Who may /start and /stop, for /help.
    pub fn operators(&self) -> String {
        if self.operator_roles.is_empty() {
            return "everyone".into();
        }
        let roles: Vec<String> = self
            .operator_roles
            .iter()
            .map(|r| format!("<@&{r}>"))
            .collect();
        format!("members with {}", roles.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_events::{CommandKind, InteractionReply, Requester};

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
            .check(&command(CommandKind::Start, "other", &["mod"]))
            .is_err());
        assert!(access.check_guild(Some("g")).is_ok());
        assert!(access.check_guild(Some("other")).is_err());
        assert!(access.check_guild(None).is_err());
        assert!(Access::default().check_guild(None).is_ok());
    }

    #[test]
    fn names_the_operators() {
        assert_eq!(Access::default().operators(), "everyone");
        assert_eq!(
            Access::from_settings("", "1,2").operators(),
            "members with <@&1> or <@&2>"
        );
    }
}
