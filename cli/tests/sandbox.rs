//! The owner's path on the whole local loop (Azurite, the local Spin host running the real
//! components, the fakes): `heimdall config` turns Terraform's outputs and the secrets into an
//! env file, and `heimdall doctor` finds nothing wrong with it, down to the real interactions
//! component refusing an unsigned PING.

mod common;

use std::collections::BTreeMap;

use common::heimdall;
use heimdall_fakes::{ArmFakeConfig, DiscordFakeConfig};
use heimdall_sandbox::{Options, Sandbox};
use serde_json::json;

#[tokio::test]
async fn config_then_doctor_on_the_local_loop() {
    let sandbox = Sandbox::start(Options::default())
        .await
        .expect("the sandbox starts");
    let result = config_then_doctor(&sandbox).await;
    sandbox.shutdown().await;
    let (config, doctor, url) = result;
    assert!(config.success, "{}", config.stderr);
    assert!(doctor.success, "{}\n{}", doctor.stdout, doctor.stderr);
    assert!(
        doctor.marked("✗").is_empty() && doctor.marked("!").is_empty(),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor
            .marked("✓")
            .iter()
            .any(|l| l.contains(&url) && l.contains("refuses a bad signature (401")),
        "{}",
        doctor.stdout
    );
}

/// Runs both commands against the sandbox; the sandbox is shut down by the caller whatever
/// happens.
async fn config_then_doctor(sandbox: &Sandbox) -> (common::Run, common::Run, String) {
    let (arm, discord) = (ArmFakeConfig::default(), DiscordFakeConfig::default());
    // The Developer Portal of the application the sandbox's player signs for.
    sandbox
        .discord
        .set_verify_key(&sandbox.player.public_key_hex());
    let url = format!("http://{}/interactions", sandbox.host.addr());
    sandbox.discord.set_interactions_endpoint_url(Some(&url));

    let azurite = &sandbox.azurite;
    let terraform = json!({
        "spin_variables": { "sensitive": false, "type": ["object", {}], "value": {
            "storage_account": azurite.account,
            "queue_endpoint": azurite.queue_endpoint,
            "table_endpoint": azurite.table_endpoint,
            "server_id": heimdall_sandbox::SERVER_ID,
            "game_port": "2456",
            "azure_tenant_id": arm.tenant_id,
            "azure_subscription_id": arm.subscription_id,
            "azure_resource_group": arm.resource_group,
            "vmss_name": arm.vmss_name,
            "vm_sizes": "Standard_D2as_v4,Standard_D2s_v3",
        }},
        "spin_variables_set_by_hand": { "sensitive": false, "type": ["tuple", []], "value":
            ["storage_key", "app_secret", "azure_client_id", "azure_client_secret", "discord_public_key", "discord_bot_token"] },
    });
    let dir = tempfile::tempdir().expect("a temporary folder");
    let env_file = dir.path().join("heimdall.env").display().to_string();
    let public_key = sandbox.player.public_key_hex();
    let endpoints = format!(
        "discord_api={};entra_endpoint={};arm_endpoint={}",
        sandbox.discord.origin(),
        sandbox.arm.origin(),
        sandbox.arm.origin()
    );
    let args = [
        "config",
        "--host",
        "spin-up",
        "--terraform-output",
        "-",
        "--out",
        &env_file,
        "--discord-application-id",
        &discord.application_id,
        "--discord-public-key",
        &public_key,
        "--discord-bot-token",
        &discord.bot_token,
        "--storage-key",
        &azurite.key,
        "--app-secret",
        &sandbox.app_secret,
        "--azure-client-id",
        &arm.client_id,
        "--azure-client-secret",
        &arm.client_secret,
    ];
    // The endpoints of the fakes go in through the environment, as every flag can.
    let env = BTreeMap::from([("HEIMDALL_SET".to_owned(), endpoints)]);
    let config = heimdall(&args, &env, &terraform.to_string()).await;
    let args = [
        "doctor",
        "--env-file",
        &env_file,
        "--client-secret-expires",
        "2099-12-31",
    ];
    let doctor = heimdall(&args, &BTreeMap::new(), "").await;
    (config, doctor, url)
}
