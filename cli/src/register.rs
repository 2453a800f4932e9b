//! `heimdall register`: puts `/start`, `/stop`, `/status` and `/help` into Discord with one bulk
//! overwrite, after comparing them with what Discord has, so that a second run changes nothing.

use std::process::ExitCode;

use heimdall_events::CommandKind;
use serde_json::{json, Value};

use crate::discord::{self, DiscordError, Scope};
use crate::manifest::{env_name, Manifest};
use crate::progress::Progress;
use crate::values::{Source, Values};
use heimdall_native_io::Http;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    source: Source,
    /// Register in this guild only; changes show at once. Defaults to the app's
    /// allowed_guild_id.
    #[arg(long, env = "HEIMDALL_GUILD_ID", conflicts_with = "global")]
    guild_id: Option<String>,
    /// Register for every guild the app is in instead of one.
    #[arg(long, env = "HEIMDALL_GLOBAL")]
    global: bool,
}

/// CHAT_INPUT: a slash command.
const SLASH: u64 = 1;

/// The commands, as Discord's `ApplicationCommandUpdateRequest` wants them.
///
/// `default_member_permissions` is `null` (every member may see and use the command) for all
/// four. /status and /help are for everyone. /start and /stop are open too, on purpose: the app
/// checks the guild and the operator roles itself (`operator_role_ids`), and a Discord-side
/// permission such as MANAGE_GUILD would hide the commands from the very roles the owner chose
/// (until a guild admin overrode it per role in Server Settings → Integrations).
///
/// `contexts` [GUILD] and `integration_types` [GUILD_INSTALL] keep global commands out of DMs
/// and user installs, where there is no guild to check roles in. Discord documents both fields
/// for global commands only; a guild command lives in its guild already, so they are left out.
pub fn definitions(scope: &Scope) -> Vec<Value> {
    let commands = [
        (
            CommandKind::Start.name(),
            "Start the Valheim server; it is ready to join in a few minutes",
        ),
        (
            CommandKind::Stop.name(),
            "Save the world and stop the Valheim server",
        ),
        (
            "status",
            "Is the server up, who is online, and what this month costs",
        ),
        (
            "help",
            "What Heimdall does and who may start or stop the server",
        ),
    ];
    commands
        .into_iter()
        .map(|(name, description)| {
            let mut command = json!({
                "name": name,
                "type": SLASH,
                "description": description,
                "default_member_permissions": null,
            });
            if *scope == Scope::Global {
                command["contexts"] = json!([0]);
                command["integration_types"] = json!([0]);
            }
            command
        })
        .collect()
}

/// What a bulk overwrite with the definitions does to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(String),
    Updated { name: String, fields: Vec<String> },
    Removed(String),
    Unchanged(String),
}

impl Change {
    fn is_change(&self) -> bool {
        !matches!(self, Change::Unchanged(_))
    }

    fn line(&self) -> String {
        match self {
            Change::Added(name) => format!("  + /{name} added"),
            Change::Updated { name, fields } => {
                format!("  ~ /{name} updated ({})", fields.join(", "))
            }
            Change::Removed(name) => format!("  - /{name} removed"),
            Change::Unchanged(name) => format!("  = /{name} unchanged"),
        }
    }
}

/// The fields that make a command different for Discord's users.
const COMPARED: &[&str] = &[
    "type",
    "description",
    "default_member_permissions",
    "contexts",
    "integration_types",
    "options",
    "nsfw",
];

/// Compares the wanted commands with Discord's, by name.
pub fn diff(wanted: &[Value], existing: &[Value]) -> Vec<Change> {
    let name = |command: &Value| command["name"].as_str().unwrap_or_default().to_owned();
    let mut changes: Vec<Change> = wanted
        .iter()
        .map(|want| {
            let Some(have) = existing.iter().find(|have| name(have) == name(want)) else {
                return Change::Added(name(want));
            };
            let fields: Vec<String> = COMPARED
                .iter()
                // Only what we set is compared for the scope fields: a guild command's are
                // Discord's to fill in.
                .filter(|field| want.get(**field).is_some() || !is_scope_field(field))
                .filter(|field| {
                    normalized(field, want.get(**field)) != normalized(field, have.get(**field))
                })
                .map(|field| (*field).to_owned())
                .collect();
            if fields.is_empty() {
                Change::Unchanged(name(want))
            } else {
                Change::Updated {
                    name: name(want),
                    fields,
                }
            }
        })
        .collect();
    changes.extend(
        existing
            .iter()
            .filter(|have| !wanted.iter().any(|want| name(want) == name(have)))
            .map(|have| Change::Removed(name(have))),
    );
    changes
}

fn is_scope_field(field: &str) -> bool {
    matches!(field, "contexts" | "integration_types")
}

/// A field's value as Discord means it: absent and its default are the same, permissions come
/// back as a string, and the scope lists are sets.
fn normalized(field: &str, value: Option<&Value>) -> Value {
    let value = value.cloned().unwrap_or(Value::Null);
    match (field, value) {
        ("type", Value::Null) => json!(SLASH),
        ("description", Value::Null) => json!(""),
        ("options", Value::Null) => json!([]),
        ("nsfw", Value::Null) => json!(false),
        ("default_member_permissions", Value::Number(n)) => Value::String(n.to_string()),
        (field, Value::Array(mut items)) if is_scope_field(field) => {
            items.sort_by_key(|item| item.as_u64());
            items.dedup();
            Value::Array(items)
        }
        (_, value) => value,
    }
}

pub fn run(args: &Args, manifest: &Manifest) -> anyhow::Result<ExitCode> {
    let values = Values::load(manifest, args.source.env_file.as_deref())?;
    let need = |name: &str| -> anyhow::Result<String> {
        let value = values.get(name);
        anyhow::ensure!(
            !value.is_empty(),
            "{name} is not set: put it in {} or in the --env-file",
            env_name(name)
        );
        Ok(value.to_owned())
    };
    let (api, token, application) = (
        need("discord_api")?,
        need("discord_bot_token")?,
        need("discord_application_id")?,
    );
    let scope = scope(args, &values)?;
    let http = Http::new(args.source.timeout());
    let progress = Progress::new();
    let where_ = match &scope {
        Scope::Guild(guild) => format!("guild {guild} (changes show at once)"),
        Scope::Global => "every guild the app is in (global)".to_owned(),
    };
    println!("Slash commands of application {application} in {where_}:");

    progress.step("asking Discord for the commands it has");
    let request = discord::list_commands_request(&api, &token, &application, &scope)?;
    let answer = http
        .send(request)
        .map_err(|e| anyhow::anyhow!("cannot reach Discord at {api}: {e}"))?;
    progress.clear();
    let existing = discord::parse_commands(&answer.response)
        .map_err(|e| anyhow::anyhow!(explain(&e, &application, &scope)))?;

    let wanted = definitions(&scope);
    let changes = diff(&wanted, &existing);
    for change in &changes {
        println!("{}", change.line());
    }
    if !changes.iter().any(Change::is_change) {
        println!("Nothing changed: Discord was not asked to write.");
        return Ok(ExitCode::SUCCESS);
    }

    progress.step("writing the commands (bulk overwrite)");
    let request = discord::overwrite_commands_request(
        &api,
        &token,
        &application,
        &scope,
        &Value::Array(wanted),
    )?;
    let answer = http
        .send(request)
        .map_err(|e| anyhow::anyhow!("cannot reach Discord at {api}: {e}"))?;
    progress.clear();
    let written = discord::parse_commands(&answer.response)
        .map_err(|e| anyhow::anyhow!(explain(&e, &application, &scope)))?;
    println!("{}", summary(&changes, written.len()));
    Ok(ExitCode::SUCCESS)
}

fn scope(args: &Args, values: &Values) -> anyhow::Result<Scope> {
    if args.global {
        return Ok(Scope::Global);
    }
    let guild = args
        .guild_id
        .clone()
        .unwrap_or_else(|| values.get("allowed_guild_id").to_owned());
    anyhow::ensure!(
        !guild.is_empty(),
        "say where: --guild-id <id> (instant; the app's allowed_guild_id is empty) or --global"
    );
    Ok(Scope::Guild(guild))
}

fn summary(changes: &[Change], now: usize) -> String {
    let count = |f: fn(&Change) -> bool| changes.iter().filter(|c| f(c)).count();
    format!(
        "Done: {} added, {} updated, {} removed, {} unchanged; Discord now has {now}.",
        count(|c| matches!(c, Change::Added(_))),
        count(|c| matches!(c, Change::Updated { .. })),
        count(|c| matches!(c, Change::Removed(_))),
        count(|c| matches!(c, Change::Unchanged(_))),
    )
}

/// Discord's refusal in plain words, with what to do.
fn explain(error: &DiscordError, application: &str, scope: &Scope) -> String {
    match (error, scope) {
        (DiscordError::Unauthorized, _) => {
            format!("{error}. Copy the token again from the Developer Portal (Bot → Reset Token) into discord_bot_token.")
        }
        (DiscordError::Forbidden { .. }, Scope::Guild(guild)) => {
            format!("{error}. The app is not in guild {guild} with the applications.commands scope: invite it with https://discord.com/oauth2/authorize?client_id={application}&scope=bot+applications.commands")
        }
        (DiscordError::Forbidden { .. } | DiscordError::NotFound { .. }, _) => {
            format!("{error}. Check discord_application_id: it must be the Application ID of the bot's own application (Developer Portal → General Information).")
        }
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Discord's answer for a command we registered: ids and versions added, and permissions
    /// as a string.
    fn as_discord_returns(command: &Value) -> Value {
        let mut have = command.clone();
        have["id"] = json!("1");
        have["application_id"] = json!("2");
        have["version"] = json!("3");
        have["nsfw"] = json!(false);
        have
    }

    /// Discord's own OpenAPI description, in ../shared/contracts next to the repository.
    fn openapi_schemas() -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/contracts/discord-openapi/openapi.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the contracts are missing ({}): {e}", path.display()));
        let openapi: Value = serde_json::from_str(&text).unwrap();
        openapi["components"]["schemas"].clone()
    }

    /// The `const` values an enum schema allows.
    fn consts(schema: &Value) -> Vec<Value> {
        schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["const"].clone())
            .collect()
    }

    #[test]
    fn definitions_have_the_shape_of_discords_openapi() {
        let schemas = openapi_schemas();
        let request = &schemas["ApplicationCommandUpdateRequest"]["properties"];
        let kinds = consts(&schemas["ApplicationCommandType"]);
        let contexts = consts(&schemas["InteractionContextType"]);
        let installs = consts(&schemas["ApplicationIntegrationType"]);
        for command in definitions(&Scope::Global) {
            for (field, value) in command.as_object().unwrap() {
                let property = &request[field];
                assert!(property.is_object(), "{field} is not in the request schema");
                if let Some(max) = property["maxLength"].as_u64() {
                    let length = value.as_str().unwrap().chars().count() as u64;
                    assert!(length <= max, "{field} {value} is longer than {max}");
                }
                if value.is_null() {
                    let types = property["type"].as_array().unwrap();
                    assert!(types.contains(&json!("null")), "{field} may not be null");
                }
            }
            assert!(kinds.contains(&command["type"]));
            let all_in = |list: &Value, allowed: &[Value]| {
                list.as_array().unwrap().iter().all(|v| allowed.contains(v))
            };
            assert!(all_in(&command["contexts"], &contexts));
            assert!(all_in(&command["integration_types"], &installs));
        }
    }

    #[test]
    fn definitions_fit_discords_limits() {
        for scope in [Scope::Global, Scope::Guild("1".into())] {
            let commands = definitions(&scope);
            assert_eq!(commands.len(), 4);
            for command in &commands {
                let name = command["name"].as_str().unwrap();
                assert!(name.len() <= 32 && name.bytes().all(|b| b.is_ascii_lowercase()));
                let description = command["description"].as_str().unwrap();
                assert!(
                    (1..=100).contains(&description.chars().count()),
                    "{description}"
                );
                assert_eq!(command["default_member_permissions"], Value::Null);
                assert_eq!(command.get("contexts").is_some(), scope == Scope::Global);
            }
        }
        assert_eq!(definitions(&Scope::Global)[0]["contexts"], json!([0]));
        assert_eq!(
            definitions(&Scope::Global)[0]["integration_types"],
            json!([0])
        );
    }

    #[test]
    fn a_first_registration_adds_everything() {
        let changes = diff(&definitions(&Scope::Global), &[]);
        assert_eq!(changes.len(), 4);
        assert!(changes.iter().all(|c| matches!(c, Change::Added(_))));
    }

    #[test]
    fn what_discord_returns_for_ours_is_unchanged() {
        for scope in [Scope::Global, Scope::Guild("1".into())] {
            let wanted = definitions(&scope);
            let mut existing: Vec<Value> = wanted.iter().map(as_discord_returns).collect();
            // Guild commands come back with whatever Discord fills in for the scope fields.
            if scope != Scope::Global {
                existing[0]["integration_types"] = json!([0]);
                existing[0]["contexts"] = Value::Null;
            }
            let changes = diff(&wanted, &existing);
            assert!(!changes.iter().any(Change::is_change), "{changes:?}");
        }
    }

    #[test]
    fn names_what_changed_and_what_goes() {
        let wanted = definitions(&Scope::Global);
        let mut existing: Vec<Value> = wanted.iter().map(as_discord_returns).collect();
        existing[0]["description"] = json!("old text");
        existing[1]["default_member_permissions"] = json!("8");
        existing[2]["contexts"] = json!([0, 1]);
        existing.remove(3);
        existing.push(json!({"id": "9", "name": "restart", "type": 1, "description": "x"}));
        assert_eq!(
            diff(&wanted, &existing),
            vec![
                Change::Updated {
                    name: "start".into(),
                    fields: vec!["description".into()]
                },
                Change::Updated {
                    name: "stop".into(),
                    fields: vec!["default_member_permissions".into()]
                },
                Change::Updated {
                    name: "status".into(),
                    fields: vec!["contexts".into()]
                },
                Change::Added("help".into()),
                Change::Removed("restart".into()),
            ]
        );
    }

    #[test]
    fn equal_values_in_other_forms_are_equal() {
        assert_eq!(
            normalized("default_member_permissions", Some(&json!(8))),
            json!("8")
        );
        assert_eq!(
            normalized("contexts", Some(&json!([2, 0, 0]))),
            json!([0, 2])
        );
        assert_eq!(normalized("type", None), json!(1));
        assert_eq!(normalized("options", Some(&Value::Null)), json!([]));
    }

    #[test]
    fn the_summary_counts() {
        let changes = [
            Change::Added("a".into()),
            Change::Unchanged("b".into()),
            Change::Removed("c".into()),
        ];
        assert_eq!(
            summary(&changes, 2),
            "Done: 1 added, 0 updated, 1 removed, 1 unchanged; Discord now has 2."
        );
    }
}
