//! The Discord endpoints the owner's tools use, sans-IO: the bot's own application
//! (`GET /applications/@me`) and the slash commands (list, bulk overwrite). The app itself only
//! edits replies and posts messages (`heimdall_discord::rest`).

use serde::Deserialize;

/// Discord wants `DiscordBot ($url, $version)` from bots.
const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/heimdall-valheim/heimdall, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// Where commands live: one guild (changes show at once) or every guild the app is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Guild(String),
    Global,
}

/// What Discord said when it did not do what was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum DiscordError {
    /// 401: the bot token is wrong (or was reset).
    Unauthorized,
    /// 403, e.g. 50001 Missing Access: the bot is not in the guild, or not with the
    /// `applications.commands` scope.
    Forbidden {
        message: String,
    },
    NotFound {
        message: String,
    },
    RateLimited {
        retry_after_s: f64,
    },
    /// Anything else, with Discord's message and its field errors (50035) as JSON.
    Refused {
        status: u16,
        message: String,
    },
    /// A 2xx whose body we cannot read.
    Malformed(String),
}

impl std::fmt::Display for DiscordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiscordError::Unauthorized => write!(f, "Discord refused the bot token (401)"),
            DiscordError::Forbidden { message } => {
                write!(f, "Discord refused access (403 {message})")
            }
            DiscordError::NotFound { message } => {
                write!(f, "Discord does not know it (404 {message})")
            }
            DiscordError::RateLimited { retry_after_s } => {
                write!(
                    f,
                    "Discord is rate limiting us; try again in {retry_after_s:.0} s"
                )
            }
            DiscordError::Refused { status, message } => {
                write!(f, "Discord answered {status}: {message}")
            }
            DiscordError::Malformed(what) => write!(f, "Discord's answer is unreadable: {what}"),
        }
    }
}

/// The parts of the bot's application that the checks compare with the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Application {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// The Ed25519 public key (hex) Discord signs interactions with.
    pub verify_key: String,
    pub interactions_endpoint_url: Option<String>,
}

/// `GET /api/v10/applications/@me` as the bot.
pub fn application_request(api: &str, bot_token: &str) -> anyhow::Result<http::Request<Vec<u8>>> {
    bot_request(
        "GET",
        &format!("{}/api/v10/applications/@me", origin(api)),
        bot_token,
        Vec::new(),
    )
}

pub fn parse_application(response: &http::Response<Vec<u8>>) -> Result<Application, DiscordError> {
    success(response)?;
    serde_json::from_slice(response.body()).map_err(|e| DiscordError::Malformed(e.to_string()))
}

/// `GET` the commands of `scope`.
pub fn list_commands_request(
    api: &str,
    bot_token: &str,
    application_id: &str,
    scope: &Scope,
) -> anyhow::Result<http::Request<Vec<u8>>> {
    let url = commands_url(api, application_id, scope)?;
    bot_request("GET", &url, bot_token, Vec::new())
}

/// `PUT` the whole set of commands of `scope` (Discord's bulk overwrite: what is not in `body`
/// is deleted).
pub fn overwrite_commands_request(
    api: &str,
    bot_token: &str,
    application_id: &str,
    scope: &Scope,
    body: &serde_json::Value,
) -> anyhow::Result<http::Request<Vec<u8>>> {
    let url = commands_url(api, application_id, scope)?;
    bot_request("PUT", &url, bot_token, body.to_string().into_bytes())
}

/// The commands in an answer to a list or an overwrite, as Discord returned them.
pub fn parse_commands(
    response: &http::Response<Vec<u8>>,
) -> Result<Vec<serde_json::Value>, DiscordError> {
    success(response)?;
    // The schema allows `null` for "no commands".
    let list: Option<Vec<serde_json::Value>> = serde_json::from_slice(response.body())
        .map_err(|e| DiscordError::Malformed(e.to_string()))?;
    Ok(list.unwrap_or_default())
}

/// Ids go into the URL: they must be snowflakes (digits), nothing that could add a segment.
pub fn is_snowflake(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

fn commands_url(api: &str, application_id: &str, scope: &Scope) -> anyhow::Result<String> {
    anyhow::ensure!(
        is_snowflake(application_id),
        "the Discord application id must be digits, not {application_id:?}"
    );
    let app = format!("{}/api/v10/applications/{application_id}", origin(api));
    Ok(match scope {
        Scope::Guild(guild) => {
            anyhow::ensure!(
                is_snowflake(guild),
                "the guild id must be digits, not {guild:?}"
            );
            format!("{app}/guilds/{guild}/commands")
        }
        Scope::Global => format!("{app}/commands"),
    })
}

fn origin(api: &str) -> &str {
    api.trim_end_matches('/')
}

fn bot_request(
    method: &str,
    url: &str,
    bot_token: &str,
    body: Vec<u8>,
) -> anyhow::Result<http::Request<Vec<u8>>> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bot {bot_token}"))
        .header("user-agent", USER_AGENT);
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    // The message names the URL's problem (a bad origin); the token is not part of it.
    builder
        .body(body)
        .map_err(|e| anyhow::anyhow!("cannot build a request for {url}: {e}"))
}

fn success(response: &http::Response<Vec<u8>>) -> Result<(), DiscordError> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
    let message = match (
        body.get("message").and_then(|m| m.as_str()),
        body.get("errors"),
    ) {
        (Some(message), Some(errors)) => format!("{message} {errors}"),
        (Some(message), None) => message.to_owned(),
        (None, _) => format!("HTTP {status}"),
    };
    Err(match status {
        401 => DiscordError::Unauthorized,
        403 => DiscordError::Forbidden { message },
        404 => DiscordError::NotFound { message },
        429 => DiscordError::RateLimited {
            retry_after_s: body
                .get("retry_after")
                .and_then(|r| r.as_f64())
                .unwrap_or(1.0),
        },
        _ => DiscordError::Refused { status, message },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn commands_urls_follow_the_scope() {
        let guild = list_commands_request(
            "https://discord.com/",
            "t",
            "12",
            &Scope::Guild("34".into()),
        )
        .unwrap();
        assert_eq!(
            guild.uri(),
            "https://discord.com/api/v10/applications/12/guilds/34/commands"
        );
        assert_eq!(guild.headers()["authorization"], "Bot t");
        assert!(guild.headers()["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("DiscordBot ("));
        let global = overwrite_commands_request(
            "https://discord.com",
            "t",
            "12",
            &Scope::Global,
            &serde_json::json!([]),
        )
        .unwrap();
        assert_eq!(global.method(), "PUT");
        assert_eq!(
            global.uri(),
            "https://discord.com/api/v10/applications/12/commands"
        );
        assert_eq!(global.headers()["content-type"], "application/json");
    }

    #[test]
    fn ids_that_are_not_snowflakes_are_refused() {
        for bad in ["", "12/../x", "abc", "1?x=1"] {
            assert!(
                list_commands_request("https://d", "t", bad, &Scope::Global).is_err(),
                "{bad}"
            );
            assert!(
                list_commands_request("https://d", "t", "1", &Scope::Guild(bad.into())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn reads_the_application_and_the_errors() {
        let app = parse_application(&answer(
            200,
            r#"{"id":"1","name":"H","verify_key":"ab","interactions_endpoint_url":null,"flags":0}"#,
        ))
        .unwrap();
        assert_eq!(
            (
                app.id.as_str(),
                app.verify_key.as_str(),
                app.interactions_endpoint_url
            ),
            ("1", "ab", None)
        );
        assert_eq!(
            parse_application(&answer(
                401,
                r#"{"message": "401: Unauthorized", "code": 0}"#
            )),
            Err(DiscordError::Unauthorized)
        );
        let error = parse_commands(&answer(
            400,
            r#"{"code":50035,"errors":{"0":{"name":{"_errors":[]}}},"message":"Invalid Form Body"}"#,
        ))
        .unwrap_err();
        let DiscordError::Refused { status, message } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*status, 400);
        assert!(message.contains("Invalid Form Body") && message.contains("\"0\""));
        assert_eq!(
            parse_commands(&answer(200, "null")).unwrap(),
            Vec::<serde_json::Value>::new()
        );
        let limited = answer(
            429,
            r#"{"message":"slow","retry_after":2.5,"global":false}"#,
        );
        assert_eq!(
            parse_commands(&limited),
            Err(DiscordError::RateLimited { retry_after_s: 2.5 })
        );
    }
}
