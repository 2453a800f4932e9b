use heimdall_azure_storage::{Account, Endpoint, Queue, Table};
use heimdall_spin_io::variable;

pub(crate) const EVENTS_QUEUE: &str = "events";
pub(crate) const POISON_QUEUE: &str = "events-poison";
pub(crate) const STATE_TABLE: &str = "servers";
pub(crate) const SCALER: &str = "http://scaler.spin.internal";

/// Everything reactions reads from its variables, once per request.
pub(crate) struct Config {
    pub server_id: String,
    pub game_port: u16,
    pub discord_api: String,
    pub bot_token: String,
    pub events: Queue,
    pub poison: Queue,
    pub table: Table,
}

impl Config {
    pub fn load() -> anyhow::Result<Config> {
        let name = variable("storage_account")?;
        let account = Account::new(&name, &variable("storage_key")?)?;
        let queues = Endpoint::new(&variable("queue_endpoint")?, &name)?;
        let tables = Endpoint::new(&variable("table_endpoint")?, &name)?;
        let game_port = variable("game_port")?
            .parse()
            .map_err(|_| anyhow::anyhow!("variable `game_port` is not a port number"))?;
        Ok(Config {
            server_id: variable("server_id")?,
            game_port,
            discord_api: variable("discord_api")?,
            bot_token: variable("discord_bot_token")?,
            events: Queue::new(account.clone(), queues.clone(), EVENTS_QUEUE),
            poison: Queue::new(account.clone(), queues, POISON_QUEUE),
            table: Table::new(account, tables, STATE_TABLE),
        })
    }
}
