//! The VM's environment file for the agent (written by cloud-init) against what the agent reads.
//! A key the agent does not know is a setting that silently does nothing; a required key that
//! is missing leaves the VM without its agent.

use std::collections::BTreeSet;

use heimdall_infra_policy::infra_dir;

/// The `KEY=` lines of the `content: |` block of the file written at `path`.
fn written_keys(cloud_init: &str, path: &str) -> BTreeSet<String> {
    let mut lines = cloud_init
        .lines()
        .skip_while(|line| line.trim() != format!("- path: {path}"));
    let content = lines
        .by_ref()
        .find(|line| line.trim() == "content: |")
        .unwrap_or_else(|| panic!("cloud-init writes no {path}"));
    let indent = content.len() - content.trim_start().len();
    lines
        .take_while(|line| line.trim().is_empty() || line.len() - line.trim_start().len() > indent)
        .filter_map(|line| line.trim().split_once('=').map(|(key, _)| key.to_owned()))
        .collect()
}

#[test]
fn the_agent_env_file_sets_only_what_the_agent_reads_and_all_it_needs() {
    let cloud_init =
        std::fs::read_to_string(infra_dir().join("cloud-init.yaml")).expect("cloud-init.yaml");
    let keys = written_keys(&cloud_init, "/etc/heimdall/agent.env");
    let known: BTreeSet<String> = heimdall_agent::env_vars().into_iter().collect();
    let unknown: Vec<&String> = keys.difference(&known).collect();
    assert!(unknown.is_empty(), "the agent does not read {unknown:?}");
    for required in [
        "HEIMDALL_SERVER_ID",
        "HEIMDALL_QUEUE_ENDPOINT",
        "HEIMDALL_STORAGE_ACCOUNT",
        "HEIMDALL_LOG_COMMAND",
        "HEIMDALL_CONTROL_QUEUE",
        "HEIMDALL_STOP_COMMAND",
        "HEIMDALL_STATE_DIR",
        "HEIMDALL_KICK_URL",
    ] {
        assert!(keys.contains(required), "agent.env lacks {required}");
    }
    // The secret the boot script writes beside it, for the kick.
    assert!(cloud_init.contains("HEIMDALL_APP_SECRET=%s"));
    assert!(known.contains("HEIMDALL_APP_SECRET"));
}

#[test]
fn the_log_command_carries_dockers_timestamps() {
    let cloud_init =
        std::fs::read_to_string(infra_dir().join("cloud-init.yaml")).expect("cloud-init.yaml");
    let line = cloud_init
        .lines()
        .find(|line| line.trim_start().starts_with("HEIMDALL_LOG_COMMAND="))
        .expect("a log command");
    assert!(line.contains("--timestamps"), "{line}");
    assert!(
        !line.contains("--tail 0"),
        "a restart must reread the log: {line}"
    );
}
