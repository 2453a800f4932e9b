//! `heimdall config` for each host, from Terraform outputs shaped by infra/outputs.tf: every
//! variable spin.toml declares is there and no other, secrets only in the private file, and the
//! SpinKube manifests match infra/spinkube/ in shape and names.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::{heimdall, Run};
use hcl::Expression;
use heimdall_infra_policy::{attribute, blocks, infra_dir, label};
use yaml_rust2::{Yaml, YamlLoader};

/// spin.toml's variables (name → secret?), read here on their own: the test does not take the
/// CLI's word for them.
fn manifest() -> BTreeMap<String, bool> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../spin.toml"))
        .unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    manifest["variables"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(name, spec)| {
            (
                name.clone(),
                spec.get("secret")
                    .and_then(toml::Value::as_bool)
                    .unwrap_or(false),
            )
        })
        .collect()
}

fn secret_names() -> BTreeSet<String> {
    manifest()
        .into_iter()
        .filter(|(_, secret)| *secret)
        .map(|(name, _)| name)
        .collect()
}

fn all_names() -> BTreeSet<String> {
    manifest().into_keys().collect()
}

/// `terraform output -json` as infra/outputs.tf makes it, with made-up values.
fn terraform_output() -> String {
    let blocks = blocks().unwrap();
    let output = |name: &str| {
        blocks
            .iter()
            .find(|b| b.identifier() == "output" && label(b, 0) == Some(name))
            .and_then(|b| attribute(b, "value"))
            .unwrap_or_else(|| panic!("infra/outputs.tf has output {name}"))
            .clone()
    };
    let Expression::Object(variables) = output("spin_variables") else {
        panic!("spin_variables is an object");
    };
    let values: serde_json::Map<String, serde_json::Value> = variables
        .keys()
        .map(|key| (key.to_string(), format!("tf-{key}").into()))
        .collect();
    let Expression::Array(by_hand) = output("spin_variables_set_by_hand") else {
        panic!("spin_variables_set_by_hand is a list");
    };
    let by_hand: Vec<String> = by_hand
        .iter()
        .map(|e| match e {
            Expression::String(name) => name.clone(),
            other => panic!("{other:?} is a name"),
        })
        .collect();
    serde_json::json!({
        "spin_variables": { "sensitive": false, "type": ["object", {}], "value": values },
        "spin_variables_set_by_hand": { "sensitive": false, "type": ["tuple", []], "value": by_hand },
        "vmss_name": { "sensitive": false, "type": "string", "value": "tf-vmss" },
    })
    .to_string()
}

/// The values set by hand, as flags; each secret's value says whose it is.
const GIVEN: &[&str] = &[
    "--discord-application-id",
    "1100000000000000000",
    "--discord-public-key",
    "ab12",
    "--discord-bot-token",
    "SECRET-bot-token",
    "--storage-key",
    "SECRET-storage-key",
    "--app-secret",
    "SECRET-app-secret",
    "--azure-client-id",
    "client-id",
    "--azure-client-secret",
    "SECRET-client-secret",
];

async fn config(host: &str, out: &Path, extra: &[&str]) -> Run {
    let out = out.display().to_string();
    let mut args = vec![
        "config",
        "--host",
        host,
        "--terraform-output",
        "-",
        "--out",
        &out,
    ];
    args.extend_from_slice(extra);
    heimdall(&args, &BTreeMap::new(), &terraform_output()).await
}

fn assert_private(path: &Path) {
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode,
        0o600,
        "{} must be readable by its owner only",
        path.display()
    );
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains("SECRET-"), "a secret value is here:\n{text}");
}

/// The variable names of `export SPIN_VARIABLE_X=…` lines, lower-cased.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export SPIN_VARIABLE_"))
        .filter_map(|l| l.split_once('='))
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn spin_up_gets_every_variable_in_a_private_env_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("heimdall.env");
    // A leftover file with a wider mode is made private too.
    std::fs::write(&out, "old").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = config("spin-up", &out, GIVEN).await;
    assert!(run.success, "{}", run.stderr);
    assert_no_secret(&run.stdout);
    assert_no_secret(&run.stderr);
    assert_private(&out);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(exported(&text), all_names());
    assert!(text.contains("export SPIN_VARIABLE_STORAGE_KEY='SECRET-storage-key'"));
    assert!(text.contains("export SPIN_VARIABLE_VMSS_NAME='tf-vmss_name'"));
    assert!(
        text.contains("export SPIN_VARIABLE_DISCORD_API='https://discord.com'"),
        "defaults are written too"
    );
}

#[tokio::test]
async fn akamai_gets_the_deploy_command_and_secrets_only_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("secrets.env");
    let run = config("akamai", &out, GIVEN).await;
    assert!(run.success, "{}", run.stderr);
    assert_no_secret(&run.stdout);
    assert_no_secret(&run.stderr);
    let deployed: BTreeSet<String> = run
        .stdout
        .split("--variable ")
        .skip(1)
        .filter_map(|part| part.split_once('='))
        .map(|(name, _)| name.to_owned())
        .collect();
    assert_eq!(deployed, all_names());
    for secret in secret_names() {
        let reference = format!(
            "--variable {secret}=\"$SPIN_VARIABLE_{}\"",
            secret.to_ascii_uppercase()
        );
        assert!(
            run.stdout.contains(&reference),
            "no {reference} in\n{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("spin aka deploy") && run.stdout.contains("spin aka cron create"));
    assert_private(&out);
    assert_eq!(
        exported(&std::fs::read_to_string(&out).unwrap()),
        secret_names()
    );
}

fn yaml(text: &str) -> Yaml {
    YamlLoader::load_from_str(text).unwrap().remove(0)
}

fn repo_yaml(name: &str) -> Yaml {
    yaml(&std::fs::read_to_string(infra_dir().join("spinkube").join(name)).unwrap())
}

/// name → the Secret key it is bound from (`None` for a plain value), of a SpinApp's variables.
fn bindings(variables: &Yaml) -> BTreeMap<String, Option<(String, String)>> {
    variables
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| {
            let reference = &v["valueFrom"]["secretKeyRef"];
            let bound = reference["name"].as_str().map(|secret| {
                (
                    secret.to_owned(),
                    reference["key"].as_str().unwrap_or_default().to_owned(),
                )
            });
            if bound.is_none() {
                assert!(v["value"].as_str().is_some(), "{v:?} has a value");
            }
            (v["name"].as_str().unwrap().to_owned(), bound)
        })
        .collect()
}

#[tokio::test]
async fn spinkube_gets_a_variables_block_and_a_secret_like_infra_spinkube() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("secret.yaml");
    let run = config("spinkube", &out, GIVEN).await;
    assert!(run.success, "{}", run.stderr);
    assert_no_secret(&run.stdout);
    assert_no_secret(&run.stderr);

    let ours = bindings(&yaml(&format!("spec:\n{}", run.stdout))["spec"]["variables"]);
    let repo = bindings(&repo_yaml("spinapp.yaml")["spec"]["variables"]);
    assert_eq!(ours.keys().cloned().collect::<BTreeSet<_>>(), all_names());
    assert_eq!(
        ours, repo,
        "the same names, bound the same way, as infra/spinkube/spinapp.yaml"
    );

    assert_private(&out);
    let secret = yaml(&std::fs::read_to_string(&out).unwrap());
    let repo_secret = repo_yaml("secret.yaml");
    for field in ["apiVersion", "kind", "type"] {
        assert_eq!(secret[field], repo_secret[field], "{field}");
    }
    assert_eq!(secret["metadata"]["name"], repo_secret["metadata"]["name"]);
    let keys = |doc: &Yaml| -> BTreeSet<String> {
        doc["stringData"]
            .as_hash()
            .unwrap()
            .keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(keys(&secret), secret_names());
    assert_eq!(keys(&secret), keys(&repo_secret));
    assert_eq!(
        secret["stringData"]["discord_bot_token"].as_str(),
        Some("SECRET-bot-token")
    );
}

#[tokio::test]
async fn a_missing_app_secret_is_made_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("heimdall.env");
    let given: Vec<&str> = GIVEN
        .chunks(2)
        .filter(|pair| pair[0] != "--app-secret")
        .flatten()
        .copied()
        .collect();
    let run = config("spin-up", &out, &given).await;
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr.contains("generated: app_secret"),
        "{}",
        run.stderr
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("export SPIN_VARIABLE_APP_SECRET='"))
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap();
    assert!(
        secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()),
        "{secret}"
    );
    assert!(!run.stderr.contains(secret));
}

#[tokio::test]
async fn missing_values_are_named_with_how_to_give_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("heimdall.env");
    let given: Vec<&str> = GIVEN
        .chunks(2)
        .filter(|pair| pair[0] != "--discord-bot-token")
        .flatten()
        .copied()
        .collect();
    let run = config("spin-up", &out, &given).await;
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("discord_bot_token: --discord-bot-token or SPIN_VARIABLE_DISCORD_BOT_TOKEN"),
        "{}",
        run.stderr
    );
    assert!(
        !out.exists(),
        "nothing is written when something is missing"
    );
}
