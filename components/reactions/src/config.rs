use heimdall_azure_storage::{Account, Endpoint, Queue, Table};
use heimdall_server_state::Settings;
use heimdall_spin_io::variable;

/// Slash commands; only the interactions component writes here.
pub(crate) const COMMANDS_QUEUE: &str = "commands";
/// What the agent on the VM observed; the VM's identity may write here, and nothing else.
pub(crate) const EVENTS_QUEUE: &str = "events";
pub(crate) const POISON_QUEUE: &str = "events-poison";
/// Orders for the agent (save and stop); the VM's identity takes them.
pub(crate) const CONTROL_QUEUE: &str = "control";
pub(crate) const STATE_TABLE: &str = "servers";
pub(crate) const SCALER: &str = "http://scaler.spin.internal";

/// Everything reactions reads from its variables, once per request.
pub(crate) struct Config {
    pub server_id: String,
    pub settings: Settings,
    pub discord_api: String,
    pub bot_token: String,
    pub commands: Queue,
    pub events: Queue,
    pub poison: Queue,
    pub control: Queue,
    pub table: Table,
}

impl Config {
    pub fn load() -> anyhow::Result<Config> {
        let name = variable("storage_account")?;
        let account = Account::new(&name, &variable("storage_key")?)?;
        let queues = Endpoint::new(&variable("queue_endpoint")?, &name)?;
        let tables = Endpoint::new(&variable("table_endpoint")?, &name)?;
        let queue = |queue_name| Queue::new(account.clone(), queues.clone(), queue_name);
        Ok(Config {
            server_id: variable("server_id")?,
            settings: settings()?,
            discord_api: variable("discord_api")?,
            bot_token: variable("discord_bot_token")?,
            commands: queue(COMMANDS_QUEUE),
            events: queue(EVENTS_QUEUE),
            poison: queue(POISON_QUEUE),
            control: queue(CONTROL_QUEUE),
            table: Table::new(account, tables, STATE_TABLE),
        })
    }
}

fn settings() -> anyhow::Result<Settings> {
    Ok(Settings {
        game_port: number("game_port")?,
        save_timeout_ms: seconds("save_timeout_seconds")?,
        silence_timeout_ms: seconds("silence_timeout_seconds")?,
        instance_check_ms: seconds("instance_check_seconds")?,
        eviction_wait_ms: seconds("eviction_wait_seconds")?,
    })
}

fn number<T: std::str::FromStr>(name: &str) -> anyhow::Result<T> {
    variable(name)?
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("variable `{name}` is not a whole number in range"))
}

fn seconds(name: &str) -> anyhow::Result<u64> {
    number::<u64>(name).map(|s| s.saturating_mul(1000))
}
