//! `heimdall doctor` against Azurite and the fakes: a good deployment passes every check, and
//! each broken one is named, with its fix, and fails the run.

mod common;

use common::{closed_port, heimdall, Deployment, Setup};
use heimdall_fakes::{ArmFakeConfig, DiscordFakeConfig};

#[tokio::test]
async fn a_good_deployment_passes_every_check() {
    let deployment = Deployment::start(Setup::default()).await;
    let run = deployment.doctor().await;
    deployment.stop().await;
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.marked("✗").is_empty() && run.marked("!").is_empty(),
        "{}",
        run.stdout
    );
    let roles = format!(
        "the app's roles allow all {} actions the scaler needs",
        heimdall_azure_arm::calls::required_actions().len()
    );
    for expected in [
        "every variable spin.toml requires is set",
        "Discord accepts the bot token",
        "discord_application_id is the bot's application",
        "discord_public_key is the application's public key",
        // The URL set in the Developer Portal, since no --interactions-url was given.
        "refuses a bad signature (401",
        "Entra gives the app",
        "the client secret is valid until 2099-01-01",
        "scale set valheim is there (capacity 0",
        roles.as_str(),
        "queue commands is there",
        "queue events is there",
        "queue events-poison is there",
        "queue control is there",
        "table servers is there",
    ] {
        assert!(
            run.marked("✓").iter().any(|line| line.contains(expected)),
            "no ✓ line with {expected:?}:\n{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("No problems found"), "{}", run.stdout);
}

#[tokio::test]
async fn the_values_may_come_from_an_env_file() {
    let deployment = Deployment::start(Setup::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("heimdall.env");
    let text: String = deployment
        .env
        .iter()
        .map(|(key, value)| format!("export {key}='{value}'\n"))
        .collect();
    std::fs::write(&file, format!("# as heimdall config writes it\n{text}")).unwrap();
    let mut env = std::collections::BTreeMap::new();
    // The environment wins over the file, as in a shell that sources it.
    env.insert("SPIN_VARIABLE_VMSS_NAME".to_owned(), "valheim".to_owned());
    let file = file.display().to_string();
    let args = [
        "doctor",
        "--env-file",
        &file,
        "--client-secret-expires",
        "2099-01-01",
    ];
    let run = heimdall(&args, &env, "").await;
    deployment.stop().await;
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
}

#[tokio::test]
async fn names_a_wrong_public_key() {
    let mut deployment = Deployment::start(Setup::default()).await;
    deployment.set("discord_public_key", &"ab".repeat(32));
    let run = deployment.doctor().await;
    deployment.stop().await;
    run.assert_failure_names(&[
        "wrong public key",
        "Developer Portal",
        &DiscordFakeConfig::default().verify_key,
    ]);
}

#[tokio::test]
async fn names_a_wrong_bot_token() {
    let mut deployment = Deployment::start(Setup::default()).await;
    deployment.set("discord_bot_token", "not-the-token");
    let run = deployment.doctor().await;
    deployment.stop().await;
    run.assert_failure_names(&["wrong bot token", "401", "Reset Token"]);
    assert!(
        !run.stdout.contains("not-the-token"),
        "a secret was printed:\n{}",
        run.stdout
    );
}

#[tokio::test]
async fn names_an_expired_client_secret() {
    let setup = Setup {
        arm: ArmFakeConfig {
            expired_client_secrets: vec!["last-years-secret".into()],
            ..ArmFakeConfig::default()
        },
        ..Setup::default()
    };
    let mut deployment = Deployment::start(setup).await;
    deployment.set("azure_client_secret", "last-years-secret");
    let run = deployment.doctor().await;
    deployment.stop().await;
    let client = ArmFakeConfig::default().client_id;
    run.assert_failure_names(&[
        "client secret has expired",
        "AADSTS7000222",
        &format!("az ad app credential reset --id {client}"),
    ]);
    assert!(
        !run.stdout.contains("last-years-secret"),
        "a secret was printed:\n{}",
        run.stdout
    );
}

#[tokio::test]
async fn names_a_wrong_client_secret() {
    let mut deployment = Deployment::start(Setup::default()).await;
    deployment.set("azure_client_secret", "a-guess");
    let run = deployment.doctor().await;
    deployment.stop().await;
    run.assert_failure_names(&["wrong client secret", "AADSTS7000215"]);
}

#[tokio::test]
async fn warns_a_month_before_the_secret_expires() {
    let deployment = Deployment::start(Setup::default()).await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(10))
        .date()
        .to_string();
    let run = heimdall(
        &["doctor", "--client-secret-expires", &soon],
        &deployment.env,
        "",
    )
    .await;
    deployment.stop().await;
    assert!(run.success, "a warning is not a failure:\n{}", run.stdout);
    assert!(
        run.marked("!")
            .iter()
            .any(|l| l.contains("client secret expires on")
                && l.contains("az ad app credential reset")),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn names_a_missing_role() {
    let deployment = Deployment::start(Setup::default()).await;
    deployment.arm.remove_role_assignments();
    let run = deployment.doctor().await;
    deployment.stop().await;
    run.assert_failure_names(&[
        "missing role",
        "may not read scale set valheim",
        "AuthorizationFailed",
        "app_scaler",
    ]);
}

#[tokio::test]
async fn names_a_missing_permission() {
    let deployment = Deployment::start(Setup::default()).await;
    deployment
        .arm
        .revoke("Microsoft.Compute/virtualMachineScaleSets/write");
    deployment
        .arm
        .revoke("Microsoft.Network/virtualNetworks/subnets/join/action");
    let run = deployment.doctor().await;
    deployment.stop().await;
    run.assert_failure_names(&[
        "Microsoft.Compute/virtualMachineScaleSets/write",
        "azurerm_role_assignment.app_scaler",
    ]);
    run.assert_failure_names(&[
        "subnets/join/action",
        "azurerm_role_assignment.app_subnet_join",
    ]);
    assert_eq!(run.marked("✗").len(), 2, "{}", run.stdout);
}

#[tokio::test]
async fn names_an_unreachable_queue_endpoint() {
    let mut deployment = Deployment::start(Setup::default()).await;
    let unreachable = format!("http://127.0.0.1:{}", closed_port());
    deployment.set("queue_endpoint", &unreachable);
    let run = deployment.doctor().await;
    deployment.stop().await;
    run.assert_failure_names(&[
        "cannot reach the queue endpoint",
        &unreachable,
        "queue_endpoint",
    ]);
    // The table is on its own endpoint and still checked.
    assert!(
        run.marked("✓")
            .iter()
            .any(|l| l.contains("table servers is there")),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn names_a_missing_table() {
    let deployment = Deployment::start(Setup {
        table: false,
        ..Setup::default()
    })
    .await;
    let run = deployment.doctor().await;
    deployment.stop().await;
    run.assert_failure_names(&["table servers does not exist", "terraform apply"]);
}

#[tokio::test]
async fn names_a_wrong_storage_key() {
    let mut deployment = Deployment::start(Setup::default()).await;
    deployment.set(
        "storage_key",
        "d3JvbmcgYnV0IHZhbGlkIGJhc2U2NCBrZXkgb2YgdGhlIGFjY291bnQ=",
    );
    let run = deployment.doctor().await;
    deployment.stop().await;
    run.assert_failure_names(&[
        "the storage key does not open account",
        "az storage account keys list",
    ]);
}

#[tokio::test]
async fn names_an_endpoint_that_does_not_verify_signatures() {
    let deployment = Deployment::start(Setup {
        endpoint_status: 200,
        ..Setup::default()
    })
    .await;
    let run = deployment.doctor().await;
    deployment.stop().await;
    run.assert_failure_names(&["accepted a PING with a bad signature", "does not verify"]);
}

#[tokio::test]
async fn names_missing_variables_and_a_url_discord_does_not_use() {
    let mut deployment = Deployment::start(Setup::default()).await;
    deployment.env.remove("SPIN_VARIABLE_STORAGE_KEY");
    deployment.set("vmss_name", "");
    let elsewhere = format!("http://127.0.0.1:{}/interactions", closed_port());
    let mut args = vec!["doctor", "--interactions-url", &elsewhere];
    args.extend(["--client-secret-expires", "2099-01-01"]);
    let run = heimdall(&args, &deployment.env, "").await;
    deployment.stop().await;
    run.assert_failure_names(&["storage_key, vmss_name", "SPIN_VARIABLE_STORAGE_KEY"]);
    run.assert_failure_names(&[
        "Discord sends interactions to",
        &format!("not to {elsewhere}"),
    ]);
    run.assert_failure_names(&["cannot reach the interactions endpoint"]);
}
