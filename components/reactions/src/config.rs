use heimdall_azure_storage::{Account, Endpoint, Queue, Table};
use heimdall_events::queues;
use heimdall_server_state::{stored, Settings};
use heimdall_spin_io::variable;

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
            commands: queue(queues::COMMANDS),
            events: queue(queues::EVENTS),
            poison: queue(queues::POISON),
            control: queue(queues::CONTROL),
            table: Table::new(account, tables, stored::TABLE),
        })
    }
}

fn settings() -> anyhow::Result<Settings> {
    let game_port = variable("game_port")?
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("variable `game_port` is not a port number"))?;
    Ok(Settings {
        game_port,
        save_timeout_ms: minutes("save_timeout_minutes")?,
        silence_timeout_ms: minutes("silence_timeout_minutes")?,
        instance_check_ms: minutes("instance_check_minutes")?,
        eviction_wait_ms: minutes("eviction_wait_minutes")?,
        idle_ms: minutes("idle_minutes")?,
        start_timeout_ms: minutes("start_timeout_minutes")?,
        vm_sizes: list(&variable("vm_sizes")?),
    })
}

/// A number of minutes (fractions allowed, so that a local run can shorten every wait) in ms.
fn minutes(name: &str) -> anyhow::Result<u64> {
    let value = variable(name)?;
    match value.trim().parse::<f64>() {
        Ok(m) if m.is_finite() && m >= 0.0 => Ok((m * 60_000.0).round() as u64),
        _ => Err(anyhow::anyhow!(
            "variable `{name}` must be a number of minutes, not {value:?}"
        )),
    }
}

/// A comma-separated list, without blanks.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
