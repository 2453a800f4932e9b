//! Azure Storage: each queue and the state table exist, and the account key opens them. The
//! requests are the app's own (SharedKey-signed by `heimdall_azure_storage`), and only read:
//! a peek at one message changes nothing, not even its dequeue count.

use std::time::SystemTime;

use heimdall_azure_storage::{check as answered_ok, Account, Endpoint, Queue, StorageError, Table};
use heimdall_server_state::stored;

use super::{Finding, Report};
use heimdall_native_io::{Http, Unreachable};

/// The app's queues; infra/storage.tf creates them (infra/policy holds Terraform to this list).
pub const QUEUES: [&str; 4] = heimdall_events::queues::ALL;

pub fn check(report: &mut Report, http: &Http, now: SystemTime) {
    let names = [
        "storage_account",
        "storage_key",
        "queue_endpoint",
        "table_endpoint",
        "server_id",
    ];
    let Some([account_name, key, queue_endpoint, table_endpoint, server_id]) =
        report.values("storage", names)
    else {
        return;
    };
    let account = match Account::new(&account_name, &key) {
        Ok(account) => account,
        Err(e) => {
            return report.add(Finding::fail(
                format!("storage: {e}"),
                "storage_account is `terraform output -raw storage_account_name`, and storage_key \
                 its key (`az storage account keys list --account-name <name> --query [0].value -o tsv`)",
            ))
        }
    };
    if let Some(queues) = endpoint(report, &queue_endpoint, &account_name, "queue_endpoint") {
        for name in QUEUES {
            report.step(&format!("looking at queue {name}"));
            let queue = Queue::new(account.clone(), queues.clone(), name);
            let answer = send(http, queue.peek_messages(1, now));
            let (finding, for_all) = judge_queue(name, &account_name, &queue_endpoint, answer);
            report.add(finding);
            // The endpoint or the key is wrong for every queue alike: once is enough.
            if for_all {
                break;
            }
        }
    }
    if let Some(tables) = endpoint(report, &table_endpoint, &account_name, "table_endpoint") {
        report.step(&format!("looking at table {}", stored::TABLE));
        let table = Table::new(account, tables, stored::TABLE);
        // The server's own state entity: absent is fine before the first /start.
        let answer = send(http, table.get(&server_id, stored::ROW, now));
        report.add(judge_table(&account_name, &table_endpoint, answer));
    }
}

/// What a peek at queue `name` says, and whether it says it for every queue (the endpoint or
/// the key is wrong).
fn judge_queue(name: &str, account: &str, origin: &str, answer: Answer) -> (Finding, bool) {
    match answer {
        Err(unreachable) => (
            Finding::fail(
                format!("cannot reach the queue endpoint {origin}: {unreachable}"),
                "check queue_endpoint (`terraform output -raw queue_endpoint`) and the network",
            ),
            true,
        ),
        Ok(Ok(())) => (
            Finding::pass(format!("queue {name} is there and the key opens it")),
            false,
        ),
        Ok(Err(error)) if error.status() == Some(403) => {
            (wrong_key(account, &error.to_string()), true)
        }
        Ok(Err(error)) if error.is_code("QueueNotFound") => (
            Finding::fail(
                format!("queue {name} does not exist in account {account}"),
                "`terraform apply` in infra/ creates the queues (infra/storage.tf)",
            ),
            false,
        ),
        Ok(Err(error)) => (
            Finding::fail(
                format!("queue {name}: {error}"),
                "check queue_endpoint and storage_account",
            ),
            true,
        ),
    }
}

/// What reading the server's state entity says about the table.
fn judge_table(account: &str, origin: &str, answer: Answer) -> Finding {
    let table = stored::TABLE;
    match answer {
        Err(unreachable) => Finding::fail(
            format!("cannot reach the table endpoint {origin}: {unreachable}"),
            "check table_endpoint (`terraform output -raw table_endpoint`) and the network",
        ),
        Ok(Ok(())) => Finding::pass(format!("table {table} is there and holds the state")),
        Ok(Err(error)) if error.is_code("ResourceNotFound") => {
            Finding::pass(format!("table {table} is there and the key opens it"))
        }
        Ok(Err(error)) if error.is_code("TableNotFound") => Finding::fail(
            format!("table {table} does not exist in account {account}"),
            "`terraform apply` in infra/ creates it (azurerm_storage_table.servers in infra/storage.tf)",
        ),
        Ok(Err(error)) if error.status() == Some(403) => wrong_key(account, &error.to_string()),
        Ok(Err(error)) => Finding::fail(
            format!("table {table}: {error}"),
            "check table_endpoint and storage_account",
        ),
    }
}

fn endpoint(report: &mut Report, origin: &str, account: &str, variable: &str) -> Option<Endpoint> {
    Endpoint::new(origin, account)
        .map_err(|e| {
            report.add(Finding::fail(
                format!("{variable}: {e}"),
                format!("set {variable} to `terraform output -raw {variable}`"),
            ))
        })
        .ok()
}

fn wrong_key(account: &str, detail: &str) -> Finding {
    Finding::fail(
        format!("the storage key does not open account {account} ({detail})"),
        format!("set storage_key to `az storage account keys list --account-name {account} --query [0].value -o tsv`"),
    )
}

/// A storage answer as the app's crate reads it, or no answer at all.
type Answer = Result<Result<(), StorageError>, Unreachable>;

fn send(http: &Http, request: http::Request<Vec<u8>>) -> Answer {
    http.send(request)
        .map(|answer| answered_ok(&answer.response))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::doctor::Mark;

    fn refused(status: u16, code: &str) -> Answer {
        Ok(Err(StorageError::Service {
            status,
            code: code.into(),
            message: String::new(),
        }))
    }

    #[test]
    fn names_each_storage_problem() {
        let (missing, for_all) = judge_queue("events", "acct", "o", refused(404, "QueueNotFound"));
        assert!(missing.line().contains("queue events does not exist") && !for_all);
        let (key, for_all) =
            judge_queue("events", "acct", "o", refused(403, "AuthenticationFailed"));
        assert!(key.line().contains("does not open account acct") && for_all);
        let (away, for_all) =
            judge_queue("events", "acct", "o", Err(Unreachable("refused".into())));
        assert!(away.line().contains("cannot reach the queue endpoint o") && for_all);
        assert_eq!(
            judge_table("acct", "o", refused(404, "ResourceNotFound")).mark,
            Mark::Pass
        );
        assert_eq!(
            judge_table("acct", "o", refused(404, "TableNotFound")).mark,
            Mark::Fail
        );
        assert_eq!(judge_table("acct", "o", Ok(Ok(()))).mark, Mark::Pass);
    }
}
