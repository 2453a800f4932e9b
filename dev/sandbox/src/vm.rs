//! The game VM, simulated: when the fake scale set boots an instance, a game log appears and the
//! real agent starts following it; when the instance goes away, the agent stops.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use heimdall_agent::{run, AgentConfig};
use heimdall_fakes::VmState;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The log file of the running game, for the session to write the recorded lines into.
#[derive(Clone, Default)]
pub struct GameLog {
    path: Arc<Mutex<Option<PathBuf>>>,
}

impl GameLog {
    /// Appends lines the way the game container prints them.
    pub fn append(&self, lines: &[&str]) -> anyhow::Result<()> {
        let path = self.path.lock().expect("not poisoned").clone();
        let path = path.ok_or_else(|| anyhow::anyhow!("no VM is running"))?;
        let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
        for line in lines {
            writeln!(file, "{line}")?;
        }
        Ok(())
    }
}

/// Follows the scale set's lifecycle and runs the agent while an instance exists.
pub struct Vm {
    pub log: GameLog,
    pub running: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Vm {
    /// `agent_env` holds the agent's settings (HEIMDALL_*) except the per-boot ones.
    pub fn watch(
        mut lifecycle: watch::Receiver<VmState>,
        agent_env: HashMap<String, String>,
    ) -> Vm {
        let log = GameLog::default();
        let (running_tx, running) = watch::channel(false);
        let task_log = log.clone();
        let task = tokio::spawn(async move {
            let mut agent: Option<AgentRun> = None;
            loop {
                let state = lifecycle.borrow_and_update().clone();
                match (state, agent.is_some()) {
                    (VmState::Running { vm_name, public_ip }, false) => {
                        match AgentRun::start(&agent_env, &vm_name, &public_ip, &task_log) {
                            Ok(run) => agent = Some(run),
                            Err(e) => eprintln!("sandbox: the agent did not start: {e:#}"),
                        }
                        let _ = running_tx.send(agent.is_some());
                    }
                    (VmState::Deallocated, true) => {
                        if let Some(run) = agent.take() {
                            run.stop().await;
                        }
                        *task_log.path.lock().expect("not poisoned") = None;
                        let _ = running_tx.send(false);
                    }
                    _ => {}
                }
                if lifecycle.changed().await.is_err() {
                    break;
                }
            }
            if let Some(run) = agent.take() {
                run.stop().await;
            }
        });
        Vm { log, running, task }
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

struct AgentRun {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl AgentRun {
    fn start(
        env: &HashMap<String, String>,
        vm_name: &str,
        public_ip: &str,
        log: &GameLog,
    ) -> anyhow::Result<AgentRun> {
        let dir = tempfile::tempdir()?;
        let log_path = dir.path().join("valheim.log");
        std::fs::File::create(&log_path)?;
        let mut env = env.clone();
        env.insert("HEIMDALL_LOG_FILE".into(), log_path.display().to_string());
        env.insert("HEIMDALL_LOG_FROM_START".into(), "1".into());
        env.insert("HEIMDALL_PUBLIC_IP".into(), public_ip.into());
        env.insert("HEIMDALL_VM_NAME".into(), vm_name.into());
        env.insert(
            "HEIMDALL_SPOOL_DIR".into(),
            dir.path().join("spool").display().to_string(),
        );
        let config = AgentConfig::from_lookup(|name| env.get(name).cloned())?;
        *log.path.lock().expect("not poisoned") = Some(log_path);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("agent".into())
            .spawn(move || run(config, flag))?;
        Ok(AgentRun {
            stop,
            thread,
            _dir: dir,
        })
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread;
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("sandbox: the agent ended with an error: {e:#}"),
            _ => eprintln!("sandbox: the agent thread panicked"),
        }
    }
}
