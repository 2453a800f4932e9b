//! Real Spin, when it is installed: found through `HEIMDALL_SPIN` or on `PATH`, the app built
//! with `spin build` once per process, and run with `spin up` on loopback, its variables given
//! as `SPIN_VARIABLE_*` the way an owner gives them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use crate::client::HttpClient;

/// The oldest Spin the app is for: spin-sdk 5 components on WASI 0.2.
const MIN_MAJOR: u32 = 3;
/// How long `spin up` may take to answer its health check; the first start compiles the
/// components, later ones take them from Wasmtime's cache.
const READY_WITHIN: Duration = Duration::from_secs(120);
/// How long a stopping `spin up` gets before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// A Spin CLI, checked to be one.
#[derive(Clone, Debug)]
pub struct Spin {
    pub program: PathBuf,
    pub version: String,
}

impl Spin {
    /// `HEIMDALL_SPIN`, which must name a Spin CLI, or else a `spin` on `PATH` that is one
    /// (another program of that name, such as the model checker, is passed over).
    pub fn find() -> anyhow::Result<Option<Spin>> {
        if let Some(program) = std::env::var_os("HEIMDALL_SPIN").filter(|p| !p.is_empty()) {
            let program = PathBuf::from(program);
            return match Spin::check(&program)? {
                Some(spin) => Ok(Some(spin)),
                None => bail!(
                    "HEIMDALL_SPIN names {}, which is not Spin {MIN_MAJOR} or later",
                    program.display()
                ),
            };
        }
        let Some(path) = std::env::var_os("PATH") else {
            return Ok(None);
        };
        for dir in std::env::split_paths(&path) {
            let program = dir.join("spin");
            if program.is_file() {
                if let Some(spin) = Spin::check(&program)? {
                    return Ok(Some(spin));
                }
            }
        }
        Ok(None)
    }

    /// Asks `program --version`; Spin answers `spin 3.6.3 (88d51cf 2025-…)`.
    fn check(program: &Path) -> anyhow::Result<Option<Spin>> {
        let output = std::process::Command::new(program)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {} --version", program.display()))?;
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(spin_version(&text).map(|version| Spin {
            program: program.to_owned(),
            version,
        }))
    }

    /// Builds the app with `spin build`, once per process: every sandbox after the first
    /// reuses the build.
    pub async fn build(&self, manifest: &Path) -> anyhow::Result<()> {
        static BUILT: tokio::sync::OnceCell<Result<(), String>> =
            tokio::sync::OnceCell::const_new();
        BUILT
            .get_or_init(|| async {
                let status = Command::new(&self.program)
                    .arg("build")
                    .arg("--from")
                    .arg(manifest)
                    .stdin(Stdio::null())
                    .stdout(stderr()?)
                    .status()
                    .await
                    .map_err(|e| format!("running spin build: {e}"))?;
                match status.success() {
                    true => Ok(()),
                    false => Err(format!("spin build failed ({status})")),
                }
            })
            .await
            .clone()
            .map_err(anyhow::Error::msg)
    }

    /// Builds the app if this process has not yet, then starts `spin up` on `listen` and waits
    /// until it answers its health check.
    pub async fn up(
        &self,
        manifest: &Path,
        listen: SocketAddr,
        variables: &HashMap<String, String>,
        component_log: Option<PathBuf>,
    ) -> anyhow::Result<SpinUp> {
        self.build(manifest).await?;
        let state = tempfile::tempdir()?;
        let mut command = Command::new(&self.program);
        command
            .arg("up")
            .arg("--from")
            .arg(manifest)
            .arg("--listen")
            .arg(listen.to_string())
            // The components' output goes to spin's own stdout and stderr, and from there
            // where the caller wants it; no second copy on disk.
            .args(["--log-dir", ""])
            .arg("--state-dir")
            .arg(state.path())
            .current_dir(state.path())
            .stdin(Stdio::null())
            // Its own process group: `spin up` runs the app in a child process, and a stop
            // must reach both, as Ctrl-C in a terminal does.
            .process_group(0);
        // Only this app's variables, whatever the calling shell has set.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SPIN_VARIABLE_") {
                command.env_remove(name);
            }
        }
        for (name, value) in variables {
            command.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
        }
        match &component_log {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                command.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                command
                    .stdout(stderr().map_err(anyhow::Error::msg)?)
                    .stderr(Stdio::inherit());
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {} up", self.program.display()))?;
        let group = child.id().and_then(|p| libc::pid_t::try_from(p).ok());
        let mut up = SpinUp {
            child,
            group,
            _state: state,
        };
        up.wait_ready(listen).await?;
        Ok(up)
    }
}

/// The version in Spin's `--version` line, if the line is Spin's and the version recent enough.
fn spin_version(text: &str) -> Option<String> {
    let version = text
        .trim()
        .strip_prefix("spin ")?
        .split_whitespace()
        .next()?;
    let major: u32 = version.split('.').next()?.parse().ok()?;
    (major >= MIN_MAJOR).then(|| version.to_owned())
}

/// This process's stderr, for a child's stdout: what a child prints never mixes with the
/// conversation on stdout.
fn stderr() -> Result<Stdio, String> {
    use std::os::fd::AsFd;
    std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .map_err(|e| format!("duplicating stderr: {e}"))
}

/// A running `spin up` and the trigger process it started, in their own process group.
pub struct SpinUp {
    child: Child,
    /// The group's id, the leader's pid: still the group's once the leader is gone.
    group: Option<libc::pid_t>,
    _state: tempfile::TempDir,
}

impl Drop for SpinUp {
    /// A sandbox dropped without [`SpinUp::stop`] (a test that panicked) leaves no Spin behind.
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

impl SpinUp {
    async fn wait_ready(&mut self, listen: SocketAddr) -> anyhow::Result<()> {
        let http = HttpClient::default();
        let health = format!("http://{listen}/.well-known/spin/health");
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("spin up exited before it served ({status})");
            }
            let request = http::Request::get(&health).body(Vec::new())?;
            if let Ok(response) = http.send(request).await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "spin up did not answer on {listen} within {} s",
            READY_WITHIN.as_secs()
        )
    }

    /// Ctrl-C, as a person stops `spin up`; killed if it does not end within [`STOP_WITHIN`].
    pub async fn stop(mut self) {
        self.signal(libc::SIGINT);
        if tokio::time::timeout(STOP_WITHIN, self.child.wait())
            .await
            .is_err()
        {
            eprintln!(
                "sandbox: spin up did not stop within {} s; killing it",
                STOP_WITHIN.as_secs()
            );
        }
        // Drop kills whatever is left of the group.
    }

    /// Sends `signal` to every process left in the group.
    fn signal(&self, signal: libc::c_int) {
        if let Some(group) = self.group {
            // SAFETY: a plain signal to the process group our own child started.
            unsafe {
                libc::kill(-group, signal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_spin_from_other_programs_called_spin() {
        assert_eq!(
            spin_version("spin 3.6.3 (88d51cf 2025-11-20)\n").as_deref(),
            Some("3.6.3")
        );
        assert_eq!(spin_version("spin 4.0.0").as_deref(), Some("4.0.0"));
        assert_eq!(spin_version("spin 2.7.0 (abc 2024-08-01)"), None);
        // The Promela model checker.
        assert_eq!(spin_version("Spin Version 6.5.2 -- 6 December 2019"), None);
        assert_eq!(spin_version(""), None);
    }
}
