//! `heimdall register` against the Discord fake: the first run adds the four commands, the
//! second changes nothing and writes nothing, and a stale set is put right.

mod common;

use std::collections::BTreeMap;

use common::{heimdall, spin_variable};
use heimdall_fakes::{DiscordFake, DiscordFakeConfig};

const GUILD: &str = "1200000000000000001";

fn env(discord: &DiscordFake, bot_token: &str) -> BTreeMap<String, String> {
    let config = DiscordFakeConfig::default();
    [
        ("discord_api", discord.origin()),
        ("discord_application_id", config.application_id),
        ("discord_bot_token", bot_token.to_owned()),
        ("allowed_guild_id", GUILD.to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (spin_variable(name), value))
    .collect()
}

fn puts(discord: &DiscordFake) -> usize {
    discord
        .requests()
        .iter()
        .filter(|r| r.method == http::Method::PUT)
        .count()
}

fn names(commands: &[serde_json::Value]) -> Vec<&str> {
    commands.iter().filter_map(|c| c["name"].as_str()).collect()
}

#[tokio::test]
async fn registers_once_then_changes_nothing() {
    let discord = DiscordFake::start(DiscordFakeConfig::default())
        .await
        .unwrap();
    let env = env(&discord, &DiscordFakeConfig::default().bot_token);

    let first = heimdall(&["register"], &env, "").await;
    assert!(first.success, "{}\n{}", first.stdout, first.stderr);
    for name in ["start", "stop", "status", "help"] {
        assert!(
            first.stdout.contains(&format!("+ /{name} added")),
            "{}",
            first.stdout
        );
    }
    assert!(
        first.stdout.contains(&format!("guild {GUILD}")),
        "{}",
        first.stdout
    );
    let registered = discord.commands(Some(GUILD));
    assert_eq!(names(&registered), ["start", "stop", "status", "help"]);
    assert!(registered
        .iter()
        .all(|c| c["default_member_permissions"].is_null()));
    assert_eq!(puts(&discord), 1);

    let second = heimdall(&["register"], &env, "").await;
    assert!(second.success, "{}", second.stderr);
    assert!(
        second.stdout.contains("Nothing changed"),
        "{}",
        second.stdout
    );
    assert_eq!(
        second.stdout.matches("unchanged").count(),
        4,
        "{}",
        second.stdout
    );
    assert_eq!(puts(&discord), 1, "an unchanged set is not written again");
    discord.shutdown().await;
}

#[tokio::test]
async fn puts_a_stale_global_set_right() {
    let discord = DiscordFake::start(DiscordFakeConfig::default())
        .await
        .unwrap();
    let env = env(&discord, &DiscordFakeConfig::default().bot_token);
    // What an older version registered: /start with other words, and a /restart since dropped.
    let stale = serde_json::json!([
        {"name": "start", "type": 1, "description": "Start the server", "contexts": [0], "integration_types": [0]},
        {"name": "restart", "type": 1, "description": "Restart the server"},
    ]);
    let request = http::Request::put(format!(
        "{}/applications/{}/commands",
        discord.api_base(),
        DiscordFakeConfig::default().application_id
    ))
    .header(
        "authorization",
        format!("Bot {}", DiscordFakeConfig::default().bot_token),
    )
    .header("user-agent", "DiscordBot (https://example.invalid, 1)")
    .header("content-type", "application/json")
    .body(stale.to_string().into_bytes())
    .unwrap();
    let answer = heimdall_sandbox::client::HttpClient::default()
        .send(request)
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        200,
        "{}",
        String::from_utf8_lossy(answer.body())
    );
    let start_id = discord.commands(None)[0]["id"].clone();

    let run = heimdall(&["register", "--global"], &env, "").await;
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    for line in [
        "~ /start updated (description)",
        "+ /stop added",
        "- /restart removed",
    ] {
        assert!(run.stdout.contains(line), "no {line:?} in\n{}", run.stdout);
    }
    assert!(
        run.stdout.contains("1 updated, 1 removed"),
        "{}",
        run.stdout
    );
    let registered = discord.commands(None);
    assert_eq!(names(&registered), ["start", "stop", "status", "help"]);
    assert_eq!(
        registered[0]["id"], start_id,
        "an updated command keeps its id"
    );
    assert!(registered
        .iter()
        .all(|c| c["contexts"] == serde_json::json!([0])));
    assert!(discord.commands(Some(GUILD)).is_empty());
    discord.shutdown().await;
}

#[tokio::test]
async fn a_wrong_bot_token_is_named() {
    let discord = DiscordFake::start(DiscordFakeConfig::default())
        .await
        .unwrap();
    let run = heimdall(&["register"], &env(&discord, "wrong"), "").await;
    discord.shutdown().await;
    assert!(!run.success);
    assert!(
        run.stderr.contains("refused the bot token (401)") && run.stderr.contains("Reset Token"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn says_where_when_no_guild_is_known() {
    let discord = DiscordFake::start(DiscordFakeConfig::default())
        .await
        .unwrap();
    let mut env = env(&discord, &DiscordFakeConfig::default().bot_token);
    env.remove(&spin_variable("allowed_guild_id"));
    let run = heimdall(&["register"], &env, "").await;
    assert!(discord.requests().is_empty(), "nothing is asked of Discord");
    discord.shutdown().await;
    assert!(!run.success);
    assert!(
        run.stderr.contains("--guild-id") && run.stderr.contains("--global"),
        "{}",
        run.stderr
    );
}
