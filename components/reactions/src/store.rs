//! The server's state in its Table entity, written only with `If-Match` on the ETag it was read
//! with: when another invocation wrote first, the change is re-applied to a fresh read.

use std::time::SystemTime;

use anyhow::{bail, Context};
use heimdall_azure_storage::table::{etag, parse_entity};
use heimdall_server_state::stored::{self, ROW};
use heimdall_server_state::ServerState;
use heimdall_spin_io::send;

use crate::config::Config;

/// Attempts at a contended write before giving up (the queue redelivers the event later).
const MAX_ATTEMPTS: usize = 8;

/// The state as last read or written, with the ETag that guards the next write.
pub(crate) struct Stored {
    pub state: ServerState,
    /// `None` while the entity does not exist yet.
    etag: Option<String>,
}

pub(crate) async fn load(config: &Config) -> anyhow::Result<Stored> {
    let request = config.table.get(&config.server_id, ROW, SystemTime::now());
    let response = send(request).await?;
    let Some(entity) = parse_entity(&response).context("reading the server state")? else {
        return Ok(Stored {
            state: ServerState::new(config.settings.clone()),
            etag: None,
        });
    };
    let state =
        stored::decode(&entity.properties, config.settings.clone()).map_err(anyhow::Error::msg)?;
    Ok(Stored {
        state,
        etag: Some(entity.etag),
    })
}

/// Applies `change` to the state and writes it; on a lost race, re-reads and applies again.
/// Returns what `change` returned on the attempt that was written.
pub(crate) async fn commit<T>(
    config: &Config,
    stored: &mut Stored,
    mut change: impl FnMut(&mut ServerState) -> T,
) -> anyhow::Result<T> {
    for _ in 0..MAX_ATTEMPTS {
        let mut next = stored.state.clone();
        let result = change(&mut next);
        if next == stored.state {
            return Ok(result); // nothing to write, nothing to race
        }
        match write(config, &next, stored.etag.as_deref()).await? {
            Some(new_etag) => {
                stored.state = next;
                stored.etag = Some(new_etag);
                return Ok(result);
            }
            None => *stored = load(config).await?,
        }
    }
    bail!("the server state kept changing under us ({MAX_ATTEMPTS} attempts)")
}

/// The new ETag, or `None` when another writer came first.
async fn write(
    config: &Config,
    state: &ServerState,
    if_match: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let properties = stored::encode(state)?;
    let now = SystemTime::now();
    let request = match if_match {
        Some(tag) => config
            .table
            .replace(&config.server_id, ROW, &properties, tag, now),
        None => config
            .table
            .insert(&config.server_id, ROW, &properties, now),
    };
    let response = send(request).await?;
    match etag(&response) {
        Ok(tag) => Ok(Some(tag)),
        Err(e) if e.is_code("UpdateConditionNotSatisfied") || e.is_code("EntityAlreadyExists") => {
            Ok(None)
        }
        Err(e) => Err(e).context("writing the server state"),
    }
}
