//! The sandbox's own view of storage: creating the queues and table (Terraform's job in Azure),
//! and looking at them for the test's assertions.

use std::time::SystemTime;

use anyhow::Context;
use heimdall_azure_storage::{check, queue::parse_peeked, table::parse_entity};
use heimdall_azure_storage::{Account, Endpoint, Queue, Table};

use crate::azurite::Azurite;
use crate::client::HttpClient;

#[derive(Clone)]
pub struct Storage {
    http: HttpClient,
    pub commands: Queue,
    pub events: Queue,
    pub poison: Queue,
    pub control: Queue,
    pub table: Table,
}

impl Storage {
    pub fn new(azurite: &Azurite, http: HttpClient) -> anyhow::Result<Storage> {
        let account = Account::new(&azurite.account, &azurite.key)?;
        let queues = Endpoint::new(&azurite.queue_endpoint, &azurite.account)?;
        let tables = Endpoint::new(&azurite.table_endpoint, &azurite.account)?;
        let queue = |name| Queue::new(account.clone(), queues.clone(), name);
        Ok(Storage {
            http,
            commands: queue("commands"),
            events: queue("events"),
            poison: queue("events-poison"),
            control: queue("control"),
            table: Table::new(account, tables, "servers"),
        })
    }

    /// Creates what infra/ creates in Azure.
    pub async fn create_all(&self) -> anyhow::Result<()> {
        let now = SystemTime::now();
        for queue in [&self.commands, &self.events, &self.poison, &self.control] {
            let response = self.http.send(queue.create(now)).await?;
            check(&response).with_context(|| format!("creating queue {}", queue.name()))?;
        }
        let response = self.http.send(self.table.create(now)).await?;
        check(&response).context("creating table servers")?;
        Ok(())
    }

    /// The texts waiting on a queue (Base64, as stored).
    pub async fn peek(&self, queue: &Queue) -> anyhow::Result<Vec<String>> {
        let response = self
            .http
            .send(queue.peek_messages(32, SystemTime::now()))
            .await?;
        check(&response).context("peeking")?;
        Ok(parse_peeked(response.body())?)
    }

    /// The `Status` property of the server's state entity, if it exists.
    pub async fn status(&self, server_id: &str) -> anyhow::Result<Option<String>> {
        let request = self.table.get(server_id, "state", SystemTime::now());
        let response = self.http.send(request).await?;
        let entity = parse_entity(&response).context("reading the state entity")?;
        Ok(entity.and_then(|e| e.properties.get("Status")?.as_str().map(str::to_owned)))
    }
}
