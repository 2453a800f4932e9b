//! Table REST: create table, get one entity, insert, and replace guarded by an ETag.

use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::request::{encode_segment, Call, Service};
use crate::{check, Account, Credential, Endpoint, StorageError};

const JSON: &str = "application/json";
/// We never need OData type annotations back: our properties are strings and numbers.
const ACCEPT: &str = "application/json;odata=nometadata";

/// One table of an account.
#[derive(Clone, Debug)]
pub struct Table {
    /// Always SharedKey for now; the components that use tables hold the account key.
    credential: Credential,
    endpoint: Endpoint,
    name: String,
}

/// An entity's properties (without the keys and Timestamp) and its ETag.
#[derive(Clone, Debug, PartialEq)]
pub struct Entity {
    pub properties: Map<String, Value>,
    pub etag: String,
}

impl Table {
    pub fn new(account: Account, endpoint: Endpoint, name: &str) -> Table {
        Table {
            credential: Credential::SharedKey(account),
            endpoint,
            name: name.to_owned(),
        }
    }

    /// Create Table: 201, or 409 `TableAlreadyExists`.
    pub fn create(&self, now: SystemTime) -> http::Request<Vec<u8>> {
        let body = serde_json::json!({ "TableName": self.name }).to_string();
        self.call("POST", "/Tables".into(), body.into_bytes(), None)
            .build(&self.credential, &self.endpoint, now)
    }

    /// Get one entity: 200 with the entity and an `ETag` header, or 404.
    pub fn get(&self, partition: &str, row: &str, now: SystemTime) -> http::Request<Vec<u8>> {
        self.call("GET", self.entity_path(partition, row), vec![], None)
            .build(&self.credential, &self.endpoint, now)
    }

    /// Insert Entity: 204 with an `ETag`, or 409 `EntityAlreadyExists`.
    pub fn insert(
        &self,
        partition: &str,
        row: &str,
        properties: &Map<String, Value>,
        now: SystemTime,
    ) -> http::Request<Vec<u8>> {
        let body = with_keys(partition, row, properties);
        let mut call = self.call("POST", format!("/{}", self.name), body, None);
        call.extra.push(("prefer", "return-no-content"));
        call.build(&self.credential, &self.endpoint, now)
    }

    /// Update Entity (replace) only if the entity still has `etag`: 204 with the new `ETag`,
    /// or 412 `UpdateConditionNotSatisfied` when another writer came first.
    pub fn replace(
        &self,
        partition: &str,
        row: &str,
        properties: &Map<String, Value>,
        etag: &str,
        now: SystemTime,
    ) -> http::Request<Vec<u8>> {
        let body = with_keys(partition, row, properties);
        self.call("PUT", self.entity_path(partition, row), body, Some(etag))
            .build(&self.credential, &self.endpoint, now)
    }

    fn entity_path(&self, partition: &str, row: &str) -> String {
        format!(
            "/{}(PartitionKey='{}',RowKey='{}')",
            self.name,
            key_literal(partition),
            key_literal(row)
        )
    }

    fn call<'a>(
        &self,
        method: &'a str,
        resource: String,
        body: Vec<u8>,
        if_match: Option<&'a str>,
    ) -> Call<'a> {
        Call {
            service: Service::Table,
            method,
            resource,
            query: vec![],
            content_type: if body.is_empty() { "" } else { JSON },
            body,
            if_match,
            extra: vec![
                ("accept", ACCEPT),
                ("dataserviceversion", "3.0;NetFx"),
                ("maxdataserviceversion", "3.0;NetFx"),
            ],
        }
    }
}

/// A key inside `(PartitionKey='…')`: quotes doubled (OData), then percent-encoded.
fn key_literal(key: &str) -> String {
    encode_segment(&key.replace('\'', "''"))
}

fn with_keys(partition: &str, row: &str, properties: &Map<String, Value>) -> Vec<u8> {
    let mut entity = properties.clone();
    entity.insert("PartitionKey".into(), Value::String(partition.into()));
    entity.insert("RowKey".into(), Value::String(row.into()));
    Value::Object(entity).to_string().into_bytes()
}

/// The entity of a Get response, or `None` for 404; other failures are errors.
pub fn parse_entity(response: &http::Response<Vec<u8>>) -> Result<Option<Entity>, StorageError> {
    if response.status() == http::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    check(response)?;
    let mut properties: Map<String, Value> = serde_json::from_slice(response.body())
        .map_err(|e| StorageError::Malformed(format!("entity is not a JSON object: {e}")))?;
    for system in ["PartitionKey", "RowKey", "Timestamp", "odata.etag"] {
        properties.remove(system);
    }
    Ok(Some(Entity {
        properties,
        etag: etag(response)?,
    }))
}

/// The `ETag` of a successful insert, replace or get.
pub fn etag(response: &http::Response<Vec<u8>>) -> Result<String, StorageError> {
    check(response)?;
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| StorageError::Malformed("response has no ETag".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::DEV_KEY;

    fn table() -> Table {
        let account = Account::new("devstoreaccount1", DEV_KEY).unwrap();
        let endpoint = Endpoint::new("http://127.0.0.1:10002", "devstoreaccount1").unwrap();
        Table::new(account, endpoint, "servers")
    }

    #[test]
    fn replace_is_guarded_and_keyed() {
        let mut props = Map::new();
        props.insert("Status".into(), Value::String("running".into()));
        let request = table().replace("it's", "state", &props, "W/\"1\"", SystemTime::UNIX_EPOCH);
        assert_eq!(request.method(), "PUT");
        assert_eq!(
            request.uri().path(),
            "/devstoreaccount1/servers(PartitionKey='it''s',RowKey='state')"
        );
        assert_eq!(request.headers()["if-match"], "W/\"1\"");
        let body: Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(body["PartitionKey"], "it's");
        assert_eq!(body["Status"], "running");
    }

    #[test]
    fn reads_an_entity_and_its_etag() {
        let body = include_str!(
            "../../../../shared/contracts/examples/azure-table/query-entities-response-nometadata.json"
        );
        let value: Value = serde_json::from_str(body).unwrap();
        let first = value["value"][0].to_string();
        let response = http::Response::builder()
            .status(200)
            .header("etag", "W/\"0x5B168C7B6E589D2\"")
            .body(first.into_bytes())
            .unwrap();
        let entity = parse_entity(&response).unwrap().unwrap();
        assert_eq!(entity.etag, "W/\"0x5B168C7B6E589D2\"");
        assert!(!entity.properties.contains_key("PartitionKey"));
        assert!(!entity.properties.contains_key("Timestamp"));
    }

    #[test]
    fn missing_entity_is_none_and_conflicts_are_errors() {
        let not_found = http::Response::builder().status(404).body(vec![]).unwrap();
        assert_eq!(parse_entity(&not_found).unwrap(), None);
        let conflict = http::Response::builder()
            .status(412)
            .body(br#"{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US","value":"The update condition specified in the request was not satisfied."}}}"#.to_vec())
            .unwrap();
        assert!(etag(&conflict)
            .unwrap_err()
            .is_code("UpdateConditionNotSatisfied"));
    }
}
