//! What the CLI's test files share: the `heimdall` binary run with a clean environment, and a
//! deployment made of Azurite, the ARM + Entra fake, the Discord fake and a tiny interactions
//! endpoint, all on loopback.
#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use heimdall_azure_storage::check;
use heimdall_fakes::{ArmFake, ArmFakeConfig, DiscordFake, DiscordFakeConfig};
use heimdall_sandbox::azurite::Azurite;
use heimdall_sandbox::client::HttpClient;
use heimdall_sandbox::storage::Storage;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Longest a run of the binary may take; every service it talks to is on loopback.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// What a run of `heimdall` did.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout lines that start with `mark` (✓, !, ✗).
    pub fn marked(&self, mark: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with(mark))
            .collect()
    }

    /// Panics, showing the whole output, unless one ✗ line contains every one of `words`.
    pub fn assert_failure_names(&self, words: &[&str]) {
        assert!(!self.success, "the run should fail:\n{}", self.stdout);
        let found = self
            .marked("✗")
            .iter()
            .any(|line| words.iter().all(|w| line.contains(w)));
        assert!(
            found,
            "no ✗ line names {words:?}:\n{}\n{}",
            self.stdout, self.stderr
        );
    }
}

/// Runs the binary with `args` and only `env` in its environment (nothing of the developer's
/// SPIN_VARIABLE_ or HEIMDALL_ settings leaks in), `stdin` on its standard input.
pub async fn heimdall(args: &[&str], env: &BTreeMap<String, String>, stdin: &str) -> Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_heimdall"))
        .args(args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the heimdall binary runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("stdin takes the input");
    drop(input);
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("heimdall ends in time")
        .expect("heimdall's output is readable");
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A port nothing listens on: bound, then let go.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    port
}

/// An interactions endpoint that answers every request with one status: 401 as the real
/// component answers a bad signature, or 200 as an endpoint that checks nothing. It stops when
/// dropped.
pub struct Endpoint {
    pub url: String,
    task: JoinHandle<()>,
}

impl Endpoint {
    pub async fn answering(status: u16) -> Endpoint {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = hyper::service::service_fn(move |_request| async move {
                    let mut response = http::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from(r#"{"error":"invalid request signature"}"#),
                    ));
                    *response.status_mut() =
                        http::StatusCode::from_u16(status).expect("a valid status");
                    Ok::<_, Infallible>(response)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        Endpoint {
            url: format!("http://{addr}/interactions"),
            task,
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How the deployment under test is made.
pub struct Setup {
    pub arm: ArmFakeConfig,
    pub discord: DiscordFakeConfig,
    /// Terraform created the table (the queues always).
    pub table: bool,
    /// What the interactions endpoint answers a bad signature with.
    pub endpoint_status: u16,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            arm: ArmFakeConfig::default(),
            discord: DiscordFakeConfig::default(),
            table: true,
            endpoint_status: 401,
        }
    }
}

/// A deployment whose every part is right, until a test breaks one.
pub struct Deployment {
    pub azurite: Azurite,
    pub arm: ArmFake,
    pub discord: DiscordFake,
    pub endpoint: Endpoint,
    /// The app's variables, as SPIN_VARIABLE_<NAME>.
    pub env: BTreeMap<String, String>,
}

impl Deployment {
    pub async fn start(setup: Setup) -> Deployment {
        let azurite = Azurite::start().await.expect("Azurite starts");
        create_storage(&azurite, setup.table).await;
        let arm = ArmFake::start(setup.arm.clone())
            .await
            .expect("the ARM fake starts");
        let discord = DiscordFake::start(setup.discord.clone())
            .await
            .expect("the Discord fake starts");
        let endpoint = Endpoint::answering(setup.endpoint_status).await;
        discord.set_interactions_endpoint_url(Some(&endpoint.url));
        let variables = [
            ("discord_public_key", setup.discord.verify_key.clone()),
            (
                "discord_application_id",
                setup.discord.application_id.clone(),
            ),
            ("discord_bot_token", setup.discord.bot_token.clone()),
            ("discord_api", discord.origin()),
            ("entra_endpoint", arm.origin()),
            ("arm_endpoint", arm.origin()),
            ("storage_account", azurite.account.clone()),
            ("storage_key", azurite.key.clone()),
            ("queue_endpoint", azurite.queue_endpoint.clone()),
            ("table_endpoint", azurite.table_endpoint.clone()),
            ("app_secret", "a-long-random-app-secret".to_owned()),
            ("azure_tenant_id", setup.arm.tenant_id.clone()),
            ("azure_client_id", setup.arm.client_id.clone()),
            ("azure_client_secret", setup.arm.client_secret.clone()),
            ("azure_subscription_id", setup.arm.subscription_id.clone()),
            ("azure_resource_group", setup.arm.resource_group.clone()),
            ("vmss_name", setup.arm.vmss_name.clone()),
        ];
        let env = variables
            .into_iter()
            .map(|(name, value)| (spin_variable(name), value))
            .collect();
        Deployment {
            azurite,
            arm,
            discord,
            endpoint,
            env,
        }
    }

    /// Sets one of the app's variables.
    pub fn set(&mut self, name: &str, value: &str) {
        self.env.insert(spin_variable(name), value.to_owned());
    }

    /// `heimdall doctor` with the deployment's variables; the secret's expiry is given so that
    /// a good deployment has nothing to warn about.
    pub async fn doctor(&self) -> Run {
        heimdall(
            &["doctor", "--client-secret-expires", "2099-01-01"],
            &self.env,
            "",
        )
        .await
    }

    pub async fn stop(self) {
        drop(self.endpoint);
        self.discord.shutdown().await;
        self.arm.shutdown().await;
        self.azurite.stop().await;
    }
}

pub fn spin_variable(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// The queues (and the table) as Terraform creates them.
async fn create_storage(azurite: &Azurite, table: bool) {
    let http = HttpClient::default();
    let storage = Storage::new(azurite, http.clone()).expect("storage clients");
    let now = SystemTime::now();
    let mut requests = vec![
        storage.commands.create(now),
        storage.events.create(now),
        storage.poison.create(now),
        storage.control.create(now),
    ];
    if table {
        requests.push(storage.table.create(now));
    }
    for request in requests {
        let response = http.send(request).await.expect("Azurite answers");
        check(&response).expect("Azurite creates it");
    }
}
