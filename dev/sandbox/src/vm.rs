//! The game VM, simulated with real processes: when the fake scale set boots an instance, the
//! sandbox starts the game (`heimdall-fake-game`, writing its container log) and the real agent
//! binary, configured as cloud-init configures it on Azure, with the fake metadata service as
//! its IMDS. When the instance goes away (scale-in or eviction), both are killed, as Azure
//! deleting the VM would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use heimdall_fakes::{MetadataFake, VmState};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Lines for the running game to print (players joining and leaving).
#[derive(Clone, Default)]
pub struct GameLog {
    input: Arc<Mutex<Option<mpsc::UnboundedSender<String>>>>,
}

impl GameLog {
    /// Has the game print these lines (with Docker's timestamps) in its log.
    pub fn append(&self, lines: &[&str]) -> anyhow::Result<()> {
        let input = self.input.lock().expect("not poisoned");
        let input = input
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no VM is running"))?;
        for line in lines {
            input
                .send((*line).to_owned())
                .map_err(|_| anyhow::anyhow!("the game has ended"))?;
        }
        Ok(())
    }
}

/// How the simulated VM's processes are set up.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// The agent's environment (`HEIMDALL_*`), without what each boot sets.
    pub agent_env: HashMap<String, String>,
    /// A game that never saves or exits on SIGTERM.
    pub game_hangs: bool,
    /// A game that loads forever.
    pub game_never_ready: bool,
}

/// Follows the scale set's lifecycle and runs the game and the agent while an instance exists.
pub struct Vm {
    pub log: GameLog,
    pub running: watch::Receiver<bool>,
    /// The folder of the VM that runs now (its disk): the game's log, the agent's state and log.
    pub disk: Arc<Mutex<Option<PathBuf>>>,
    restarts: mpsc::UnboundedSender<()>,
    task: JoinHandle<()>,
}

impl Vm {
    pub fn watch(
        mut lifecycle: watch::Receiver<VmState>,
        metadata: Arc<MetadataFake>,
        config: VmConfig,
    ) -> Vm {
        let log = GameLog::default();
        let disk = Arc::new(Mutex::new(None));
        let (running_tx, running) = watch::channel(false);
        let (restarts, mut restart_requests) = mpsc::unbounded_channel();
        let (task_log, task_disk) = (log.clone(), disk.clone());
        let task = tokio::spawn(async move {
            let mut vm: Option<Booted> = None;
            loop {
                let state = lifecycle.borrow_and_update().clone();
                match (state, vm.is_some()) {
                    (VmState::Running { vm_name, .. }, false) => {
                        metadata.set_instance(Some(vm_name));
                        match Booted::start(&config, &task_log) {
                            Ok(booted) => {
                                *task_disk.lock().expect("not poisoned") =
                                    Some(booted.disk.path().to_owned());
                                vm = Some(booted);
                            }
                            Err(e) => eprintln!("sandbox: the VM did not boot: {e:#}"),
                        }
                        let _ = running_tx.send(vm.is_some());
                    }
                    (VmState::Deallocated, true) => {
                        metadata.set_instance(None);
                        if let Some(booted) = vm.take() {
                            booted.delete().await;
                        }
                        *task_log.input.lock().expect("not poisoned") = None;
                        *task_disk.lock().expect("not poisoned") = None;
                        let _ = running_tx.send(false);
                    }
                    _ => {}
                }
                tokio::select! {
                    changed = lifecycle.changed() => if changed.is_err() { break },
                    Some(()) = restart_requests.recv() => {
                        if let Some(booted) = vm.as_mut() {
                            booted.restart_agent(&config).await;
                        }
                    }
                }
            }
            if let Some(booted) = vm.take() {
                booted.delete().await;
            }
        });
        Vm {
            log,
            running,
            disk,
            restarts,
            task,
        }
    }

    /// Kills the agent (SIGKILL, mid-whatever it is doing) and starts it again on the same
    /// disk, as systemd's `Restart=always` does after a crash.
    pub fn restart_agent(&self) {
        let _ = self.restarts.send(());
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// One boot of the VM: its disk and its two processes.
struct Booted {
    disk: tempfile::TempDir,
    game: JoinHandle<()>,
    game_pid: Option<u32>,
    agent: Child,
}

impl Booted {
    fn start(config: &VmConfig, log: &GameLog) -> anyhow::Result<Booted> {
        let disk = tempfile::tempdir()?;
        let (game, game_pid, input) = start_game(disk.path(), config)?;
        *log.input.lock().expect("not poisoned") = Some(input);
        let agent = start_agent(disk.path(), config)?;
        Ok(Booted {
            disk,
            game,
            game_pid,
            agent,
        })
    }

    async fn restart_agent(&mut self, config: &VmConfig) {
        let _ = self.agent.kill().await;
        match start_agent(self.disk.path(), config) {
            Ok(agent) => self.agent = agent,
            Err(e) => eprintln!("sandbox: the agent did not start again: {e:#}"),
        }
    }

    /// Azure deletes the VM: everything on it ends at once.
    async fn delete(mut self) {
        let _ = self.agent.kill().await;
        if let Some(pid) = self.game_pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
            // SAFETY: kill(2) has no memory effects; the pid is our child's, still unreaped
            // (the reaper task is aborted right after), so it cannot name another process.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = (&mut self.game).await;
    }
}

/// Starts the game with its standard input fed from a channel; a task reaps it when it exits
/// (so that `stop` sees it gone, not a zombie).
fn start_game(
    disk: &Path,
    config: &VmConfig,
) -> anyhow::Result<(JoinHandle<()>, Option<u32>, mpsc::UnboundedSender<String>)> {
    let mut command = Command::new(crate::binary("heimdall-fake-game")?);
    command
        .arg("run")
        .arg("--log")
        .arg(disk.join("game.log"))
        .arg("--pid-file")
        .arg(disk.join("game.pid"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if config.game_hangs {
        command.arg("--hang");
    }
    if config.game_never_ready {
        command.arg("--never-ready");
    }
    let mut child = command.spawn().context("starting heimdall-fake-game")?;
    let pid = child.id();
    let mut stdin = child.stdin.take().context("the game has no stdin")?;
    let (input, mut lines) = mpsc::unbounded_channel::<String>();
    let game = tokio::spawn(async move {
        let feed = async {
            while let Some(line) = lines.recv().await {
                if stdin
                    .write_all(format!("{line}\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            // Keep the pipe open until the game ends, so that it never reads end-of-file.
            std::future::pending::<()>().await;
        };
        tokio::select! {
            _ = child.wait() => {}
            () = feed => {}
        }
    });
    Ok((game, pid, input))
}

/// The agent binary as systemd runs it: its environment, its log to a file on the disk.
fn start_agent(disk: &Path, config: &VmConfig) -> anyhow::Result<Child> {
    let stop = format!(
        "'{}' stop --pid-file '{}' --timeout-seconds 20",
        crate::binary("heimdall-fake-game")?.display(),
        disk.join("game.pid").display()
    );
    let agent_log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(disk.join("agent.log"))?;
    Command::new(crate::binary("heimdall-agent")?)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(&config.agent_env)
        .env("HEIMDALL_LOG_FILE", disk.join("game.log"))
        .env("HEIMDALL_LOG_FROM_START", "1")
        .env("HEIMDALL_STOP_COMMAND", stop)
        .env("HEIMDALL_STATE_DIR", disk.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(agent_log)
        .kill_on_drop(true)
        .spawn()
        .context("starting heimdall-agent")
}
