//! What the owner's command line asks of the fakes: Discord's application and slash commands,
//! Entra's answer to an expired secret, and ARM's role checks and permissions list, each shaped
//! like the real service's answers.

mod common;

use common::{assert_compatible, body_json, call, example};
use heimdall_azure_arm::entra::{parse_token_response, token_request};
use heimdall_azure_arm::{ArmError, ClientCredentials, ScaleSet};
use heimdall_fakes::{ArmFake, ArmFakeConfig, DiscordFake, DiscordFakeConfig};

const AGENT: &str = "DiscordBot (https://github.com/heimdall, 0.1)";

fn bot(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("user-agent", AGENT.to_owned()),
        ("authorization", format!("Bot {token}")),
        ("content-type", "application/json".to_owned()),
    ]
}

async fn discord_call(method: &str, url: &str, token: &str, body: &str) -> http::Response<Vec<u8>> {
    let headers = bot(token);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    call(method, url, &headers, body.as_bytes()).await
}

#[tokio::test]
async fn discord_shows_the_application_to_its_bot_only() {
    let config = DiscordFakeConfig::default();
    let fake = DiscordFake::start(config.clone()).await.unwrap();
    fake.set_interactions_endpoint_url(Some("https://app.example/interactions"));
    let url = format!("{}/applications/@me", fake.api_base());
    let app = body_json(&discord_call("GET", &url, &config.bot_token, "").await);
    assert_eq!(app["id"], config.application_id.as_str());
    assert_eq!(app["verify_key"], config.verify_key.as_str());
    assert_eq!(
        app["interactions_endpoint_url"],
        "https://app.example/interactions"
    );
    let refused = discord_call("GET", &url, "wrong", "").await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        body_json(&refused),
        serde_json::json!({"message": "401: Unauthorized", "code": 0})
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn discord_commands_are_replaced_as_a_whole() {
    let config = DiscordFakeConfig::default();
    let fake = DiscordFake::start(config.clone()).await.unwrap();
    let url = format!(
        "{}/applications/{}/guilds/42/commands",
        fake.api_base(),
        config.application_id
    );
    let first = r#"[{"name":"start","description":"Start"},{"name":"stop","description":"Stop"}]"#;
    let answer = discord_call("PUT", &url, &config.bot_token, first).await;
    assert_eq!(answer.status(), 200);
    let stored = body_json(&answer);
    assert_eq!(stored[0]["guild_id"], "42");
    assert_eq!(stored[0]["type"], 1);
    let second = r#"[{"name":"start","description":"Start"}]"#;
    discord_call("PUT", &url, &config.bot_token, second).await;
    let listed = body_json(&discord_call("GET", &url, &config.bot_token, "").await);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        listed[0]["id"], stored[0]["id"],
        "an unchanged command keeps its id"
    );
    assert!(
        fake.commands(None).is_empty(),
        "guild commands are not global"
    );

    let other_app = format!("{}/applications/1/commands", fake.api_base());
    assert_eq!(
        discord_call("GET", &other_app, &config.bot_token, "")
            .await
            .status(),
        403
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn discord_refuses_commands_it_would_refuse() {
    let config = DiscordFakeConfig::default();
    let fake = DiscordFake::start(config.clone()).await.unwrap();
    let url = format!(
        "{}/applications/{}/commands",
        fake.api_base(),
        config.application_id
    );
    let cases = [
        (
            r#"[{"name":"Start","description":"x"}]"#,
            "name",
            "APPLICATION_COMMAND_INVALID_NAME",
        ),
        (
            r#"[{"name":"start","description":""}]"#,
            "description",
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            r#"[{"name":"a","description":"x"},{"name":"a","description":"y"}]"#,
            "name",
            "APPLICATION_COMMANDS_DUPLICATE_NAME",
        ),
        (
            r#"[{"name":"a","description":"x","contexts":[7]}]"#,
            "contexts",
            "BASE_TYPE_CHOICES",
        ),
    ];
    for (body, field, code) in cases {
        let answer = discord_call("PUT", &url, &config.bot_token, body).await;
        assert_eq!(answer.status(), 400, "{body}");
        let error = body_json(&answer);
        assert_compatible(
            &error,
            &example("discord/error-invalid-form-body-object.json"),
        );
        assert_eq!(error["code"], 50035);
        let index = if code == "APPLICATION_COMMANDS_DUPLICATE_NAME" {
            "1"
        } else {
            "0"
        };
        assert_eq!(
            error["errors"][index][field]["_errors"][0]["code"], code,
            "{error}"
        );
    }
    assert!(
        fake.commands(None).is_empty(),
        "a refused overwrite changes nothing"
    );
    fake.shutdown().await;
}

fn credentials(config: &ArmFakeConfig, secret: &str) -> ClientCredentials {
    ClientCredentials {
        tenant_id: config.tenant_id.clone(),
        client_id: config.client_id.clone(),
        client_secret: secret.to_owned(),
    }
}

#[tokio::test]
async fn entra_says_when_a_secret_has_expired() {
    let config = ArmFakeConfig {
        expired_client_secrets: vec!["old".into()],
        ..ArmFakeConfig::default()
    };
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let request =
        token_request(&fake.origin(), &fake.origin(), &credentials(&config, "old")).unwrap();
    let response = common::send(request).await;
    assert_eq!(response.status(), 401);
    let body = body_json(&response);
    assert_compatible(&body, &example("entra/client-credentials-error-400.json"));
    assert_eq!(body["error"], "invalid_client");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!(
            "AADSTS7000222: The provided client secret keys for app '{}' are expired.",
            config.client_id
        )),
        "{description}"
    );
    assert!(matches!(
        parse_token_response(&response),
        Err(ArmError::Entra { status: 401, .. })
    ));
    fake.shutdown().await;
}

#[tokio::test]
async fn arm_checks_the_apps_roles_and_lists_them() {
    let config = ArmFakeConfig::default();
    let fake = ArmFake::start(config.clone()).await.unwrap();
    let request = token_request(
        &fake.origin(),
        &fake.origin(),
        &credentials(&config, &config.client_secret),
    )
    .unwrap();
    let token = parse_token_response(&common::send(request).await).unwrap();
    let set = ScaleSet::new(
        &fake.origin(),
        &config.subscription_id,
        &config.resource_group,
        &config.vmss_name,
    )
    .unwrap();
    let vmss_id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/{}",
        config.subscription_id, config.resource_group, config.vmss_name
    );
    let permissions = |version: &'static str| {
        set.resource_request(
            &token,
            &format!("{vmss_id}/providers/Microsoft.Authorization/permissions"),
            version,
        )
        .unwrap()
    };
    let actions = |body: &serde_json::Value| -> Vec<String> {
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| {
                p["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
            })
            .collect()
    };
    const WRITE: &str = "Microsoft.Compute/virtualMachineScaleSets/write";

    let listed = body_json(&common::send(permissions("2022-04-01")).await);
    assert!(actions(&listed).iter().any(|a| a == WRITE), "{listed}");
    assert!(listed["value"][0]["notActions"].is_array());

    fake.revoke(WRITE);
    let listed = body_json(&common::send(permissions("2022-04-01")).await);
    assert!(!actions(&listed).iter().any(|a| a == WRITE), "{listed}");
    let patch = common::send(set.set_capacity_request(&token, 1, None).unwrap()).await;
    assert_eq!(patch.status(), 403);
    let error = body_json(&patch);
    assert_compatible(&error, &example("arm/error-response-format-compute.json"));
    assert_eq!(error["error"]["code"], "AuthorizationFailed");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&format!("perform action '{WRITE}' over scope '{vmss_id}'")));
    assert_eq!(
        common::send(set.get_request(&token).unwrap())
            .await
            .status(),
        200,
        "reading is still allowed"
    );

    fake.remove_role_assignments();
    assert_eq!(
        common::send(set.get_request(&token).unwrap())
            .await
            .status(),
        403
    );
    let listed = body_json(&common::send(permissions("2022-04-01")).await);
    assert_eq!(listed["value"], serde_json::json!([]));
    assert_eq!(common::send(permissions("1999-01-01")).await.status(), 400);
    assert!(
        fake.capacity_patches().is_empty(),
        "a refused PATCH changes nothing"
    );
    fake.shutdown().await;
}
