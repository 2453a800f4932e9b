//! Azurite, Microsoft's Storage emulator, as a child process on loopback: in memory, with an
//! account and key made up for this run (so nothing relies on the well-known dev key).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine as _;
use tokio::process::{Child, Command};

use crate::ports::{free_port, random_bytes};

pub struct Azurite {
    child: Child,
    pub account: String,
    pub key: String,
    pub queue_endpoint: String,
    pub table_endpoint: String,
    _workdir: tempfile::TempDir,
}

impl Azurite {
    pub async fn start() -> anyhow::Result<Azurite> {
        let program = azurite_program()?;
        let workdir = tempfile::tempdir()?;
        let (queue_port, table_port, blob_port) = (free_port()?, free_port()?, free_port()?);
        let account = "heimdalldev".to_owned();
        let key = base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>());
        let child = Command::new(&program)
            .args(["--inMemoryPersistence", "--disableTelemetry", "--silent"])
            .args([
                "--blobHost",
                "127.0.0.1",
                "--queueHost",
                "127.0.0.1",
                "--tableHost",
                "127.0.0.1",
            ])
            .args(["--blobPort", &blob_port.to_string()])
            .args(["--queuePort", &queue_port.to_string()])
            .args(["--tablePort", &table_port.to_string()])
            .current_dir(workdir.path())
            .env("AZURITE_ACCOUNTS", format!("{account}:{key}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let azurite = Azurite {
            child,
            account,
            key,
            queue_endpoint: format!("http://127.0.0.1:{queue_port}"),
            table_endpoint: format!("http://127.0.0.1:{table_port}"),
            _workdir: workdir,
        };
        wait_for_port(queue_port).await?;
        wait_for_port(table_port).await?;
        Ok(azurite)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// `HEIMDALL_AZURITE`, or the copy the setup script installs under the cache folder.
fn azurite_program() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("HEIMDALL_AZURITE") {
        return Ok(PathBuf::from(path));
    }
    let installed = crate::cache_dir().join("node/node_modules/.bin/azurite");
    if installed.exists() {
        return Ok(installed);
    }
    bail!(
        "Azurite not found at {}; run scripts/setup (or set HEIMDALL_AZURITE)",
        installed.display()
    )
}

async fn wait_for_port(port: u16) -> anyhow::Result<()> {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("Azurite did not listen on port {port} within 15 s")
}
