//! `heimdall config`: turns `terraform output -json`, the Discord values and the secrets into
//! what a Spin host needs, with every variable spin.toml declares and no other, and the secrets
//! only where secrets belong: a 0600 env file for `spin up`, the environment for
//! `spin aka deploy`, a Kubernetes Secret for SpinKube.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::manifest::{env_name, Manifest, Variable};
use crate::values::shell_quote;

/// The Secret that infra/spinkube/spinapp.yaml binds the secret variables from.
pub const SPINKUBE_SECRET: &str = "heimdall-secrets";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// `spin up` (or the local host): an env file of `export SPIN_VARIABLE_…` lines.
    SpinUp,
    /// Fermyon/Akamai Functions: the `spin aka deploy` command; secrets come from the
    /// environment (a 0600 env file of the secrets alone).
    Akamai,
    /// SpinKube: the SpinApp's `variables:` block and a Secret with the secret ones.
    Spinkube,
}

impl Host {
    /// The file with the secrets, unless --out says otherwise.
    fn default_out(self) -> &'static str {
        match self {
            Host::SpinUp => "heimdall.env",
            Host::Akamai => "heimdall-secrets.env",
            Host::Spinkube => "heimdall-secret.yaml",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `terraform output -json` saved to a file, or - to read it from stdin.
    #[arg(long, env = "HEIMDALL_TERRAFORM_OUTPUT")]
    terraform_output: String,
    /// Which Spin host to configure.
    #[arg(long, value_enum, env = "HEIMDALL_HOST")]
    host: Host,
    /// Where to write the file with the secrets (mode 0600) [default: heimdall.env,
    /// heimdall-secrets.env or heimdall-secret.yaml by host].
    #[arg(long, env = "HEIMDALL_OUT")]
    out: Option<PathBuf>,
    /// The Discord application's id (Developer Portal, General Information).
    #[arg(long, env = "SPIN_VARIABLE_DISCORD_APPLICATION_ID")]
    discord_application_id: Option<String>,
    /// The Discord application's public key, hex (Developer Portal, General Information).
    #[arg(long, env = "SPIN_VARIABLE_DISCORD_PUBLIC_KEY")]
    discord_public_key: Option<String>,
    /// The bot's token (Developer Portal, Bot).
    /// Prefer the environment variable: a flag's value shows in the process list.
    #[arg(long, env = "SPIN_VARIABLE_DISCORD_BOT_TOKEN", hide_env_values = true)]
    discord_bot_token: Option<String>,
    /// The storage account's key (`az storage account keys list`).
    /// Prefer the environment variable: a flag's value shows in the process list.
    #[arg(long, env = "SPIN_VARIABLE_STORAGE_KEY", hide_env_values = true)]
    storage_key: Option<String>,
    /// The secret of the kick and tick routes; a random one is made when not given.
    /// Prefer the environment variable: a flag's value shows in the process list.
    #[arg(long, env = "SPIN_VARIABLE_APP_SECRET", hide_env_values = true)]
    app_secret: Option<String>,
    /// The app's service principal (its appId).
    #[arg(long, env = "SPIN_VARIABLE_AZURE_CLIENT_ID")]
    azure_client_id: Option<String>,
    /// The service principal's client secret.
    /// Prefer the environment variable: a flag's value shows in the process list.
    #[arg(
        long,
        env = "SPIN_VARIABLE_AZURE_CLIENT_SECRET",
        hide_env_values = true
    )]
    azure_client_secret: Option<String>,
    /// Any other variable, e.g. --set operator_role_ids=123,456 (repeatable; in the environment
    /// separated by ';'). SPIN_VARIABLE_<NAME> in the environment works too.
    #[arg(
        long = "set",
        value_name = "NAME=VALUE",
        env = "HEIMDALL_SET",
        value_delimiter = ';'
    )]
    set: Vec<String>,
}

/// The variables set by hand that have a flag of their own, in the order of [`Args`]' fields
/// (a test holds the flags to it).
const FLAGGED: [&str; 7] = [
    "discord_application_id",
    "discord_public_key",
    "discord_bot_token",
    "storage_key",
    "app_secret",
    "azure_client_id",
    "azure_client_secret",
];

/// Where a value came from, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    Given,
    Terraform,
    Default,
    Generated,
}

/// A variable with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub variable: Variable,
    pub value: String,
    pub origin: Origin,
}

/// What Terraform knows: `spin_variables` and the names it leaves to the owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Terraform {
    pub variables: BTreeMap<String, String>,
    pub by_hand: Vec<String>,
}

/// Reads `terraform output -json`: `{"name": {"value": …, "sensitive": bool, "type": …}}`.
pub fn parse_terraform(text: &str) -> anyhow::Result<Terraform> {
    let outputs: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .context("the Terraform outputs are not `terraform output -json`")?;
    let value = |name: &str| outputs.get(name).map(|output| &output["value"]);
    let variables = match value("spin_variables") {
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(name, value)| {
                Ok((
                    name.clone(),
                    scalar(value).with_context(|| format!("spin_variables.{name}"))?,
                ))
            })
            .collect::<anyhow::Result<_>>()?,
        _ => anyhow::bail!("the Terraform outputs have no spin_variables map: run `terraform output -json` in infra/ after `terraform apply`"),
    };
    let by_hand = match value("spin_variables_set_by_hand") {
        Some(serde_json::Value::Array(names)) => names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Terraform { variables, by_hand })
}

fn scalar(value: &serde_json::Value) -> anyhow::Result<String> {
    match value {
        serde_json::Value::String(text) => Ok(text.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        other => anyhow::bail!("is {other}, not a string"),
    }
}

/// Every variable of the manifest with its value: given > Terraform > generated app_secret >
/// spin.toml's default. Errors name each required variable nobody gave. `notes` collects what
/// the owner should know (names Terraform has that spin.toml does not, a generated secret).
pub fn resolve(
    manifest: &Manifest,
    given: &BTreeMap<String, String>,
    terraform: &Terraform,
    mut new_secret: impl FnMut() -> anyhow::Result<String>,
    notes: &mut Vec<String>,
) -> anyhow::Result<Vec<Entry>> {
    for name in given.keys() {
        anyhow::ensure!(
            manifest.get(name).is_some(),
            "spin.toml declares no variable {name}"
        );
    }
    for name in terraform
        .variables
        .keys()
        .filter(|n| manifest.get(n).is_none())
    {
        notes.push(format!(
            "Terraform's spin_variables has {name}, which spin.toml does not declare: left out"
        ));
    }
    let mut missing = Vec::new();
    let mut entries = Vec::new();
    for variable in &manifest.variables {
        let name = variable.name.as_str();
        let found = given
            .get(name)
            .map(|v| (v.clone(), Origin::Given))
            .or_else(|| {
                terraform
                    .variables
                    .get(name)
                    .map(|v| (v.clone(), Origin::Terraform))
            });
        let (value, origin) = match (found, variable.default.as_ref()) {
            (Some(found), _) => found,
            (None, _) if name == "app_secret" => (new_secret()?, Origin::Generated),
            (None, Some(default)) => (default.clone(), Origin::Default),
            (None, None) => (String::new(), Origin::Default),
        };
        if variable.required && value.trim().is_empty() {
            missing.push(how_to_give(name, terraform));
        }
        entries.push(Entry {
            variable: variable.clone(),
            value,
            origin,
        });
    }
    anyhow::ensure!(
        missing.is_empty(),
        "missing values:\n  {}",
        missing.join("\n  ")
    );
    Ok(entries)
}

/// How the owner gives a variable: its flag or --set, and whether Terraform should have had it.
fn how_to_give(name: &str, terraform: &Terraform) -> String {
    let flag = if FLAGGED.contains(&name) {
        format!("--{}", name.replace('_', "-"))
    } else {
        format!("--set {name}=…")
    };
    let whose = if terraform.by_hand.iter().any(|n| n == name) {
        "Terraform leaves it to you"
    } else {
        "not in Terraform's spin_variables"
    };
    format!("{name}: {flag} or {} ({whose})", env_name(name))
}

/// `spin up`: every variable as `export SPIN_VARIABLE_<NAME>='…'`.
pub fn render_env_file(entries: &[Entry]) -> String {
    let mut text = String::from(
        "# Heimdall's Spin variables for `spin up`, written by `heimdall config --host spin-up`.\n\
         # It holds secrets: keep it private (mode 0600) and out of version control.\n\
         # Use: . ./heimdall.env && spin up   (or: heimdall doctor --env-file heimdall.env)\n",
    );
    for entry in entries {
        text.push_str(&format!(
            "export {}={}\n",
            env_name(&entry.variable.name),
            shell_quote(&entry.value)
        ));
    }
    text
}

/// Akamai: the deploy and cron commands of infra/akamai/README.md, the secrets read from the
/// environment, and the env file that puts them there.
pub fn render_akamai(entries: &[Entry], secrets_file: &Path) -> (String, String) {
    let secrets: Vec<&Entry> = entries.iter().filter(|e| e.variable.secret).collect();
    let mut script = format!(
        "# Heimdall on Akamai Functions (infra/akamai/README.md), from the repository's root after `spin build`.\n\
         # The secrets come from the environment, never from this text: load them first.\n\
         . {}\n\
         spin aka deploy",
        shell_quote(&sourceable(secrets_file))
    );
    for entry in entries {
        let value = if entry.variable.secret {
            format!("\"${}\"", env_name(&entry.variable.name))
        } else {
            shell_quote(&entry.value)
        };
        script.push_str(&format!(
            " \\\n  --variable {}={value}",
            entry.variable.name
        ));
    }
    let app_secret = env_name("app_secret");
    script.push_str(&format!(
        "\n\n# Set Discord's Interactions Endpoint URL to https://<app URL>/interactions, \
         then schedule the tick:\n\
         SECRET_Q=$(python3 -c 'import sys, urllib.parse; \
         print(urllib.parse.quote(sys.argv[1], safe=\"\"))' \"${app_secret}\")\n\
         spin aka cron create \"* * * * *\" \"/reactions/tick?secret=$SECRET_Q\" heimdall-tick\n"
    ));
    let mut env = String::from(
        "# The secret Spin variables, for `spin aka deploy` (heimdall config --host akamai).\n\
         # Keep this file private (mode 0600) and out of version control.\n",
    );
    for entry in secrets {
        env.push_str(&format!(
            "export {}={}\n",
            env_name(&entry.variable.name),
            shell_quote(&entry.value)
        ));
    }
    (script, env)
}

/// A path for `.`, which looks a bare file name up in PATH: `./name` for a file here.
fn sourceable(path: &Path) -> String {
    let text = path.display().to_string();
    if text.contains('/') {
        text
    } else {
        format!("./{text}")
    }
}

/// SpinKube: the `variables:` block of infra/spinkube/spinapp.yaml (secrets by reference) and
/// the Secret of infra/spinkube/secret.yaml with their values. Strings are written as JSON
/// strings, which YAML reads as double-quoted scalars.
pub fn render_spinkube(entries: &[Entry]) -> (String, String) {
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    let mut variables = String::from("  variables:\n");
    let mut secret = format!(
        "# The secret Spin variables of spin.toml (heimdall config --host spinkube).\n\
         # Keep it out of version control; apply it with `kubectl apply -f <this file>`.\n\
         apiVersion: v1\nkind: Secret\nmetadata:\n  name: {SPINKUBE_SECRET}\n\
         type: Opaque\nstringData:\n"
    );
    for entry in entries {
        let name = &entry.variable.name;
        if entry.variable.secret {
            let reference = format!("{{ name: {SPINKUBE_SECRET}, key: {name} }}");
            variables.push_str(&format!(
                "    - name: {name}\n      valueFrom:\n        secretKeyRef: {reference}\n"
            ));
            secret.push_str(&format!("  {name}: {}\n", quoted(&entry.value)));
        } else {
            variables.push_str(&format!(
                "    - name: {name}\n      value: {}\n",
                quoted(&entry.value)
            ));
        }
    }
    (variables, secret)
}

pub fn run(args: &Args, manifest: &Manifest) -> anyhow::Result<ExitCode> {
    let terraform = parse_terraform(&read_input(&args.terraform_output)?)?;
    let given = given(args, manifest, std::env::vars())?;
    let mut notes = Vec::new();
    let entries = resolve(manifest, &given, &terraform, random_secret, &mut notes)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(args.host.default_out()));
    let (stdout, private) = match args.host {
        Host::SpinUp => (String::new(), render_env_file(&entries)),
        Host::Akamai => render_akamai(&entries, &out),
        Host::Spinkube => render_spinkube(&entries),
    };
    write_private(&out, &private)?;
    print!("{stdout}");
    for note in &notes {
        eprintln!("note: {note}");
    }
    eprintln!("{}", summary(&entries, &out));
    Ok(ExitCode::SUCCESS)
}

/// The values the owner gave: the flags (or their SPIN_VARIABLE_ environment), --set, and any
/// other SPIN_VARIABLE_<NAME> of spin.toml in the environment.
fn given(
    args: &Args,
    manifest: &Manifest,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let env: BTreeMap<String, String> = env.into_iter().collect();
    let mut given: BTreeMap<String, String> = manifest
        .variables
        .iter()
        .filter_map(|v| {
            env.get(&env_name(&v.name))
                .map(|value| (v.name.clone(), value.clone()))
        })
        .collect();
    for pair in &args.set {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--set {pair:?}: expected NAME=VALUE"))?;
        given.insert(name.trim().to_owned(), value.to_owned());
    }
    let flags = [
        &args.discord_application_id,
        &args.discord_public_key,
        &args.discord_bot_token,
        &args.storage_key,
        &args.app_secret,
        &args.azure_client_id,
        &args.azure_client_secret,
    ];
    for (name, value) in FLAGGED.into_iter().zip(flags) {
        if let Some(value) = value {
            given.insert(name.to_owned(), value.clone());
        }
    }
    Ok(given)
}

fn read_input(source: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    if source == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the Terraform outputs from stdin")?;
    } else {
        text = std::fs::read_to_string(source).with_context(|| format!("reading {source}"))?;
    }
    Ok(text)
}

/// 32 random bytes in hex: URL-safe as it is, for the tick's `?secret=`.
fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for app_secret: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Writes a file only its owner can read, also when it existed with a wider mode.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Where each value came from (names only: no value is printed).
fn summary(entries: &[Entry], out: &Path) -> String {
    let names = |origin: Origin| {
        let list: Vec<&str> = entries
            .iter()
            .filter(|e| e.origin == origin)
            .map(|e| e.variable.name.as_str())
            .collect();
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.join(", ")
        }
    };
    let mut text = format!(
        "Wrote {} (mode 0600, secrets inside).\n  given: {}\n  from Terraform: {}\n  spin.toml defaults: {}",
        out.display(),
        names(Origin::Given),
        names(Origin::Terraform),
        names(Origin::Default),
    );
    if entries.iter().any(|e| e.origin == Origin::Generated) {
        text.push_str("\n  generated: app_secret, a new random secret. The VM's agent sends the same value: put it in the Key Vault secret Terraform names (terraform output key_vault_secret_names).");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::parse_env_file;

    fn manifest() -> Manifest {
        Manifest::parse(
            "[variables]\n\
             discord_bot_token = { required = true, secret = true }\n\
             storage_account = { required = true }\n\
             app_secret = { required = true, secret = true }\n\
             game_port = { default = \"2456\" }\n\
             operator_role_ids = { default = \"\" }\n",
        )
        .unwrap()
    }

    fn terraform() -> Terraform {
        parse_terraform(r#"{"spin_variables":{"sensitive":false,"type":["object",{}],"value":{"storage_account":"acct","game_port":"2457","gone":"x"}},
                "spin_variables_set_by_hand":{"sensitive":false,"type":["tuple",[]],"value":["discord_bot_token","app_secret"]},
                "vmss_name":{"sensitive":false,"type":"string","value":"v"}}"#)
            .unwrap()
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn resolved(pairs: &[(&str, &str)]) -> (Vec<Entry>, Vec<String>) {
        let mut notes = Vec::new();
        let entries = resolve(
            &manifest(),
            &values(pairs),
            &terraform(),
            || Ok("fresh".into()),
            &mut notes,
        )
        .unwrap();
        (entries, notes)
    }

    #[test]
    fn each_flag_sets_its_own_variable() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let mut argv = vec!["config".to_owned(), "--host=spin-up".to_owned()];
        argv.push("--terraform-output=-".to_owned());
        for name in FLAGGED {
            argv.push(format!("--{}={name}", name.replace('_', "-")));
        }
        let cli = <Cli as clap::Parser>::try_parse_from(argv).unwrap();
        let manifest = Manifest::embedded().unwrap();
        let given = given(&cli.args, &manifest, []).unwrap();
        for name in FLAGGED {
            assert_eq!(given.get(name).map(String::as_str), Some(name));
        }
    }

    #[test]
    fn reads_terraforms_outputs() {
        let terraform = terraform();
        assert_eq!(terraform.variables["storage_account"], "acct");
        assert_eq!(terraform.by_hand, vec!["discord_bot_token", "app_secret"]);
        assert!(parse_terraform(r#"{"vmss_name":{"value":"v"}}"#).is_err());
        assert!(parse_terraform("[]").is_err());
    }

    #[test]
    fn every_variable_once_from_the_right_place() {
        let (entries, notes) =
            resolved(&[("discord_bot_token", "tok"), ("operator_role_ids", "1,2")]);
        let got: Vec<(&str, &str, Origin)> = entries
            .iter()
            .map(|e| (e.variable.name.as_str(), e.value.as_str(), e.origin))
            .collect();
        assert_eq!(
            got,
            vec![
                ("discord_bot_token", "tok", Origin::Given),
                ("storage_account", "acct", Origin::Terraform),
                ("app_secret", "fresh", Origin::Generated),
                ("game_port", "2457", Origin::Terraform),
                ("operator_role_ids", "1,2", Origin::Given),
            ]
        );
        assert!(notes[0].contains("gone"), "{notes:?}");
    }

    #[test]
    fn names_what_is_missing_and_how_to_give_it() {
        let error = resolve(
            &manifest(),
            &BTreeMap::new(),
            &terraform(),
            || Ok("s".into()),
            &mut Vec::new(),
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("--discord-bot-token or SPIN_VARIABLE_DISCORD_BOT_TOKEN (Terraform leaves it to you)"),
            "{text}"
        );
        let error = resolve(
            &manifest(),
            &values(&[("nope", "1")]),
            &terraform(),
            || Ok("s".into()),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("no variable nope"));
    }

    #[test]
    fn a_given_app_secret_is_kept() {
        let (entries, _) = resolved(&[("discord_bot_token", "t"), ("app_secret", "mine")]);
        assert!(entries
            .iter()
            .any(|e| e.value == "mine" && e.origin == Origin::Given));
    }

    #[test]
    fn the_env_file_reads_back_as_written() {
        let (entries, _) = resolved(&[("discord_bot_token", "it's $ecret")]);
        let read = parse_env_file(&render_env_file(&entries)).unwrap();
        assert_eq!(read.len(), entries.len());
        assert!(read.contains(&(
            "SPIN_VARIABLE_DISCORD_BOT_TOKEN".to_owned(),
            "it's $ecret".to_owned()
        )));
    }

    #[test]
    fn akamai_keeps_secrets_out_of_the_command() {
        let (entries, _) = resolved(&[("discord_bot_token", "tok-value")]);
        let (script, env) = render_akamai(&entries, Path::new("s.env"));
        assert!(
            !script.contains("tok-value") && !script.contains("fresh"),
            "{script}"
        );
        assert!(
            script.contains("--variable discord_bot_token=\"$SPIN_VARIABLE_DISCORD_BOT_TOKEN\"")
        );
        assert!(script.contains("--variable storage_account='acct'"));
        assert!(script.contains(". './s.env'"), "{script}");
        let secrets = parse_env_file(&env).unwrap();
        assert_eq!(secrets.len(), 2);
        assert!(secrets.iter().all(
            |(k, _)| k == "SPIN_VARIABLE_DISCORD_BOT_TOKEN" || k == "SPIN_VARIABLE_APP_SECRET"
        ));
    }

    #[test]
    fn spinkube_refers_to_secrets_by_name() {
        let (entries, _) = resolved(&[("discord_bot_token", "s3cr3t\"v")]);
        let (variables, secret) = render_spinkube(&entries);
        assert!(
            !variables.contains("s3cr3t") && !variables.contains("fresh"),
            "{variables}"
        );
        assert!(
            variables.contains("secretKeyRef: { name: heimdall-secrets, key: discord_bot_token }")
        );
        assert!(variables.contains("    - name: game_port\n      value: \"2457\"\n"));
        assert!(
            secret.contains("  discord_bot_token: \"s3cr3t\\\"v\"\n"),
            "{secret}"
        );
        assert!(!secret.contains("storage_account"));
    }

    #[test]
    fn the_summary_names_no_value() {
        let (entries, _) = resolved(&[("discord_bot_token", "tok-value")]);
        let text = summary(&entries, Path::new("x.env"));
        assert!(!text.contains("tok-value") && !text.contains("fresh"));
        assert!(text.contains("generated: app_secret"));
    }
}
