//! The bot's own application (`GET /applications/@me`: its id, public key and Interactions
//! Endpoint URL) and its slash commands, global and per guild: `GET`, and `PUT` as Discord's
//! bulk overwrite, whose body replaces the whole set. Bodies are checked as Discord checks an
//! `ApplicationCommandUpdateRequest` (../shared/contracts/discord-openapi); a refusal is a 50035
//! naming the command's index and field.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Value};

use super::{
    check_bot, check_json, check_user_agent, form_error, form_error_at, invalid_json, only,
    snowflake, DiscordFakeConfig, Shared,
};
use crate::util::Reply;

/// The most commands a bulk overwrite takes (the schema's `maxItems`).
const MAX_COMMANDS: usize = 130;
/// CHAT_INPUT, the slash command; USER, MESSAGE and PRIMARY_ENTRY_POINT are 2 to 4.
const SLASH: u64 = 1;
/// InteractionContextType: GUILD, BOT_DM, PRIVATE_CHANNEL.
const CONTEXTS: &[u64] = &[0, 1, 2];
/// ApplicationIntegrationType: GUILD_INSTALL, USER_INSTALL.
const INTEGRATION_TYPES: &[u64] = &[0, 1];

/// The application as the Developer Portal has it.
#[derive(Debug, Default)]
pub(super) struct Application {
    pub(super) verify_key: String,
    pub(super) interactions_endpoint_url: Option<String>,
    /// Registered commands by guild; `None` holds the global ones.
    commands: HashMap<Option<String>, Vec<Value>>,
}

impl Application {
    pub(super) fn new(config: &DiscordFakeConfig) -> Application {
        Application {
            verify_key: config.verify_key.clone(),
            interactions_endpoint_url: config.interactions_endpoint_url.clone(),
            commands: HashMap::new(),
        }
    }

    pub(super) fn commands(&self, guild: Option<&str>) -> Vec<Value> {
        self.commands
            .get(&guild.map(str::to_owned))
            .cloned()
            .unwrap_or_default()
    }
}

/// The answer for the application's routes; `None` for any other path.
pub(super) fn handle(
    shared: &Shared,
    application: &mut Application,
    segments: &[&str],
    request: &http::Request<Bytes>,
) -> Option<Reply> {
    let answer = match segments {
        ["api", "v10", "applications", "@me"] => me(shared, application, request),
        ["api", "v10", "applications", id, "commands"] => {
            commands(shared, application, id, None, request)
        }
        ["api", "v10", "applications", id, "guilds", guild, "commands"] => {
            commands(shared, application, id, Some(guild), request)
        }
        _ => return None,
    };
    Some(answer.unwrap_or_else(|refusal| refusal))
}

/// `GET /applications/@me` as the bot: the parts of a `PrivateApplicationResponse` that
/// describe the app.
fn me(
    shared: &Shared,
    application: &Application,
    request: &http::Request<Bytes>,
) -> Result<Reply, Reply> {
    only(request, http::Method::GET)?;
    check_user_agent(request)?;
    check_bot(shared, request)?;
    let id = &shared.config.application_id;
    Ok(crate::util::json(
        200,
        json!({
            "id": id,
            "name": "Heimdall",
            "icon": null,
            "description": "",
            "summary": "",
            "type": null,
            "bot": { "id": id, "username": "Heimdall", "discriminator": "0000", "global_name": null, "avatar": null, "bot": true },
            "bot_public": false,
            "bot_require_code_grant": false,
            "verify_key": application.verify_key,
            "flags": 0,
            "redirect_uris": [],
            "interactions_endpoint_url": application.interactions_endpoint_url,
            "role_connections_verification_url": null,
            "integration_types_config": { "0": {} },
        }),
    ))
}

/// `GET` or `PUT` the commands of the application, globally or in one guild.
fn commands(
    shared: &Shared,
    application: &mut Application,
    application_id: &str,
    guild: Option<&str>,
    request: &http::Request<Bytes>,
) -> Result<Reply, Reply> {
    check_user_agent(request)?;
    check_bot(shared, request)?;
    if application_id != shared.config.application_id {
        // A bot manages its own application's commands only.
        return Err(crate::util::json(
            403,
            json!({ "message": "Missing Access", "code": 50001 }),
        ));
    }
    if let Some(guild) = guild.filter(|g| !is_snowflake(g)) {
        return Err(form_error(
            Some("guild_id"),
            "NUMBER_TYPE_COERCE",
            &format!("Value \"{guild}\" is not snowflake."),
        ));
    }
    let key = guild.map(str::to_owned);
    if *request.method() == http::Method::GET {
        return Ok(crate::util::json(
            200,
            Value::Array(application.commands(guild)),
        ));
    }
    only(request, http::Method::PUT)?;
    let wanted = read_commands(request)?;
    let previous = application.commands.remove(&key).unwrap_or_default();
    let stored = overwrite(application_id, guild, &previous, wanted);
    application.commands.insert(key, stored.clone());
    Ok(crate::util::json(200, Value::Array(stored)))
}

fn is_snowflake(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

/// A bulk overwrite's body, checked command by command.
fn read_commands(request: &http::Request<Bytes>) -> Result<Vec<Value>, Reply> {
    check_json(request)?;
    let body: Value = serde_json::from_slice(request.body()).map_err(|_| invalid_json())?;
    let list = match body {
        Value::Null => Vec::new(),
        Value::Array(list) => list,
        _ => return Err(form_error(None, "BASE_TYPE_ARRAY", "Must be an array.")),
    };
    if list.len() > MAX_COMMANDS {
        return Err(form_error(
            None,
            "BASE_TYPE_MAX_LENGTH",
            &format!("Must be {MAX_COMMANDS} or fewer in length."),
        ));
    }
    let mut seen = Vec::new();
    for (index, command) in list.iter().enumerate() {
        let identity = check_command(&index.to_string(), command)?;
        if seen.contains(&identity) {
            return Err(form_error_at(
                &[&index.to_string(), "name"],
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                "Application command names must be unique",
            ));
        }
        seen.push(identity);
    }
    Ok(list)
}

/// Checks one command; its identity for Discord is its type and name.
fn check_command(index: &str, command: &Value) -> Result<(u64, String), Reply> {
    let at = |field: &str, code: &str, message: &str| form_error_at(&[index, field], code, message);
    let Some(fields) = command.as_object() else {
        return Err(form_error_at(
            &[index],
            "MODEL_TYPE_CONVERT",
            "Only dictionaries may be used in a ModelType",
        ));
    };
    let kind = match fields.get("type") {
        None | Some(Value::Null) => SLASH,
        Some(value) => value
            .as_u64()
            .filter(|k| (1..=4).contains(k))
            .ok_or_else(|| {
                at(
                    "type",
                    "BASE_TYPE_CHOICES",
                    "Value must be one of {1, 2, 3, 4}.",
                )
            })?,
    };
    let name = fields
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| at("name", "BASE_TYPE_REQUIRED", "This field is required"))?;
    if !(1..=32).contains(&name.chars().count()) {
        return Err(at(
            "name",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 32 in length.",
        ));
    }
    if kind == SLASH && !is_slash_name(name) {
        return Err(at(
            "name",
            "APPLICATION_COMMAND_INVALID_NAME",
            "Command name is invalid",
        ));
    }
    let description = match fields.get("description") {
        None | Some(Value::Null) => "",
        Some(Value::String(text)) => text.as_str(),
        Some(_) => return Err(at("description", "BASE_TYPE_STRING", "Must be a string.")),
    };
    if kind == SLASH && !(1..=100).contains(&description.chars().count()) {
        return Err(at(
            "description",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        ));
    }
    if permissions(fields.get("default_member_permissions")).is_none() {
        return Err(at(
            "default_member_permissions",
            "NUMBER_TYPE_COERCE",
            "Value is not int.",
        ));
    }
    check_choices(fields.get("contexts"), CONTEXTS)
        .map_err(|m| at("contexts", "BASE_TYPE_CHOICES", &m))?;
    check_choices(fields.get("integration_types"), INTEGRATION_TYPES)
        .map_err(|m| at("integration_types", "BASE_TYPE_CHOICES", &m))?;
    match fields.get("options") {
        None | Some(Value::Null) => {}
        Some(Value::Array(options)) if options.len() <= 25 => {}
        Some(Value::Array(_)) => {
            return Err(at(
                "options",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ))
        }
        Some(_) => return Err(at("options", "BASE_TYPE_ARRAY", "Must be an array.")),
    }
    Ok((kind, name.to_owned()))
}

/// Discord's rule for slash command names: letters, digits, `-`, `_` and `'`, lower case where
/// the script has case.
fn is_slash_name(name: &str) -> bool {
    name.chars()
        .all(|c| (c.is_alphanumeric() || matches!(c, '-' | '_' | '\'')) && !c.is_uppercase())
}

/// `default_member_permissions` as Discord stores it (a string of digits, or null); `None` when
/// it is neither a number nor digits.
fn permissions(value: Option<&Value>) -> Option<Value> {
    match value {
        None | Some(Value::Null) => Some(Value::Null),
        Some(Value::Number(n)) => n.as_u64().map(|n| Value::String(n.to_string())),
        Some(Value::String(digits))
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(Value::String(digits.clone()))
        }
        Some(_) => None,
    }
}

/// A list of at least one distinct value out of `allowed`, or null.
fn check_choices(value: Option<&Value>, allowed: &[u64]) -> Result<(), String> {
    let items = match value {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(_) => return Err("Must be a non-empty array.".into()),
    };
    let mut seen = Vec::new();
    for item in items {
        match item.as_u64().filter(|v| allowed.contains(v)) {
            Some(v) if !seen.contains(&v) => seen.push(v),
            _ => return Err(format!("Value must be one of {allowed:?}, each once.")),
        }
    }
    Ok(())
}

/// The new set as Discord stores and returns it: a command with the type and name of one it had
/// keeps its id, and gets a new version only when it changed.
fn overwrite(
    application_id: &str,
    guild: Option<&str>,
    previous: &[Value],
    wanted: Vec<Value>,
) -> Vec<Value> {
    wanted
        .into_iter()
        .map(|command| {
            let kind = command["type"].as_u64().unwrap_or(SLASH);
            let mut stored = json!({
                "application_id": application_id,
                "type": kind,
                "name": command["name"],
                "description": command["description"].as_str().unwrap_or_default(),
                "default_member_permissions": permissions(command.get("default_member_permissions")).unwrap_or(Value::Null),
                "contexts": command.get("contexts").cloned().unwrap_or(Value::Null),
                "integration_types": command.get("integration_types").filter(|v| !v.is_null()).cloned().unwrap_or(json!([0])),
                "nsfw": command["nsfw"].as_bool().unwrap_or(false),
            });
            if let Some(options) = command.get("options").filter(|o| !o.is_null()) {
                stored["options"] = options.clone();
            }
            if let Some(guild) = guild {
                stored["guild_id"] = guild.into();
            }
            let before = previous
                .iter()
                .find(|p| p["type"] == stored["type"] && p["name"] == stored["name"]);
            let unchanged = before.is_some_and(|b| definition(b) == definition(&stored));
            let (id, version) = match before {
                Some(before) if unchanged => (before["id"].clone(), before["version"].clone()),
                Some(before) => (before["id"].clone(), snowflake().into()),
                None => (snowflake().into(), snowflake().into()),
            };
            stored["id"] = id;
            stored["version"] = version;
            stored
        })
        .collect()
}

/// A stored command without what Discord assigns.
fn definition(command: &Value) -> Value {
    let mut definition = command.clone();
    if let Some(fields) = definition.as_object_mut() {
        fields.remove("id");
        fields.remove("version");
    }
    definition
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_names_and_descriptions_as_discord_does() {
        let ok = json!({"name": "start", "type": 1, "description": "Start it"});
        assert!(check_command("0", &ok).is_ok());
        for bad in [
            json!({"name": "Start", "description": "x"}),
            json!({"name": "has space", "description": "x"}),
            json!({"name": "x".repeat(33), "description": "x"}),
            json!({"name": "start", "description": ""}),
            json!({"name": "start", "description": "x".repeat(101)}),
            json!({"name": "start", "description": "x", "type": 9}),
            json!({"name": "start", "description": "x", "contexts": [0, 0]}),
            json!({"name": "start", "description": "x", "integration_types": [2]}),
            json!({"name": "start", "description": "x", "default_member_permissions": "admin"}),
            json!("start"),
        ] {
            assert!(check_command("0", &bad).is_err(), "{bad}");
        }
        // A user command has no description and may have capitals and spaces.
        assert!(check_command("0", &json!({"name": "Wave at", "type": 2})).is_ok());
    }

    #[test]
    fn an_overwrite_keeps_ids_and_versions_of_what_did_not_change() {
        let first = overwrite(
            "1",
            None,
            &[],
            vec![
                json!({"name": "a", "description": "x"}),
                json!({"name": "b", "description": "y"}),
            ],
        );
        let second = overwrite(
            "1",
            None,
            &first,
            vec![
                json!({"name": "a", "description": "x"}),
                json!({"name": "b", "description": "z"}),
            ],
        );
        assert_eq!(first[0]["id"], second[0]["id"]);
        assert_eq!(first[0]["version"], second[0]["version"]);
        assert_eq!(first[1]["id"], second[1]["id"]);
        assert_ne!(first[1]["version"], second[1]["version"]);
        assert_eq!(second[0]["default_member_permissions"], Value::Null);
        assert_eq!(second[0]["integration_types"], json!([0]));
    }
}
