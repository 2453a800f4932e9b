//! How the state is kept: one Table entity per server (PartitionKey: the server id), its JSON in
//! one property. Reactions writes it; the interactions component reads it for /status.

use serde_json::{Map, Value};

use crate::{ServerState, Settings};

/// The table of server states.
pub const TABLE: &str = "servers";
/// The RowKey of a server's state entity.
pub const ROW: &str = "state";
const STATE: &str = "State";
/// The status alone, for people who look at the table in the portal.
const STATUS: &str = "Status";

/// The entity's properties for `state`.
pub fn encode(state: &ServerState) -> Result<Map<String, Value>, serde_json::Error> {
    let mut properties = Map::new();
    properties.insert(STATUS.into(), state.status.as_str().into());
    properties.insert(STATE.into(), serde_json::to_string(state)?.into());
    Ok(properties)
}

/// The state in an entity's properties, with the owner's `settings`.
pub fn decode(properties: &Map<String, Value>, settings: Settings) -> Result<ServerState, String> {
    let json = properties
        .get(STATE)
        .and_then(Value::as_str)
        .ok_or("the server state entity has no State property")?;
    let mut state: ServerState = serde_json::from_str(json)
        .map_err(|e| format!("the server state is not valid JSON: {e}"))?;
    state.settings = settings;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_a_state() {
        let state = ServerState::default();
        let properties = encode(&state).unwrap();
        assert_eq!(properties[STATUS], "stopped");
        assert_eq!(decode(&properties, Settings::default()).unwrap(), state);
        assert!(decode(&Map::new(), Settings::default()).is_err());
        let mut broken = Map::new();
        broken.insert(STATE.into(), "{".into());
        assert!(decode(&broken, Settings::default()).is_err());
    }
}
