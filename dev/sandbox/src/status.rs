//! Records every status the state entity goes through, by reading it often.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::storage::Storage;

pub struct StatusRecorder {
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl StatusRecorder {
    pub fn start(storage: Storage, server_id: &str) -> StatusRecorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let server_id = server_id.to_owned();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(Some(status)) = storage.status(&server_id).await {
                    let mut seen = sink.lock().expect("not poisoned");
                    if seen.last() != Some(&status) {
                        seen.push(status);
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        StatusRecorder { seen, task }
    }

    /// The distinct statuses in the order they appeared.
    pub fn sequence(&self) -> Vec<String> {
        self.seen.lock().expect("not poisoned").clone()
    }

    /// Waits (boundedly) until the latest status seen is `wanted`.
    pub async fn wait_for(&self, wanted: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.sequence().last().map(String::as_str) == Some(wanted) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
