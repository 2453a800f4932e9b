//! A loopback proxy in front of one Azurite service, for the sandbox's bad days: it passes
//! every request through unchanged, except that it can
//! - deliver every message twice (each Put Message is forwarded twice): the queue's
//!   at-least-once delivery, at its worst;
//! - have another writer change the server's state entity just before reactions writes it, so
//!   that Azurite answers 412 to reactions' `If-Match`, as a real race would.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use bytes::Bytes;
use heimdall_azure_storage::table::{etag, parse_entity};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::client::HttpClient;
use crate::storage::Storage;
use crate::SERVER_ID;

/// What the proxy does to the traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageFaults {
    /// Forward every Put Message twice.
    pub duplicate_messages: bool,
    /// Win the race against the next N replaces of the state entity.
    pub state_conflicts: u32,
}

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    upstream: String,
    http: HttpClient,
    storage: Storage,
    duplicate_messages: bool,
    conflicts_left: AtomicU32,
}

impl Proxy {
    pub async fn start(
        upstream: &str,
        storage: Storage,
        faults: StorageFaults,
    ) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: HttpClient::default(),
            storage,
            duplicate_messages: faults.duplicate_messages,
            conflicts_left: AtomicU32::new(faults.state_conflicts),
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            let shared = serving;
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(forward(&shared, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Proxy { addr, shared, task })
    }

    /// Races with the state entity still to win.
    pub fn conflicts_left(&self) -> u32 {
        self.shared.conflicts_left.load(Ordering::SeqCst)
    }

    /// `http://127.0.0.1:PORT`, to use as the service's endpoint.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn forward(shared: &Shared, request: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    match relay(shared, request).await {
        Ok(response) => response.map(|body| Full::new(Bytes::from(body))),
        Err(e) => {
            let mut failed = http::Response::new(Full::new(Bytes::from(format!("{e:#}"))));
            *failed.status_mut() = http::StatusCode::BAD_GATEWAY;
            failed
        }
    }
}

async fn relay(
    shared: &Shared,
    request: http::Request<Incoming>,
) -> anyhow::Result<http::Response<Vec<u8>>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes().to_vec();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = http::Request::builder()
        .method(parts.method.clone())
        .uri(format!("{}{path_and_query}", shared.upstream));
    for (name, value) in &parts.headers {
        if name != http::header::HOST {
            upstream = upstream.header(name, value);
        }
    }
    let upstream = upstream.body(body)?;
    let put_message = parts.method == http::Method::POST
        && parts.uri.path().ends_with("/messages")
        && parts.uri.query().is_none_or(|q| !q.contains("popreceipt"));
    if put_message && shared.duplicate_messages {
        // The same signed request twice: Azure keeps both, and so do we.
        shared.http.send(upstream.clone()).await?;
    }
    let replaces_state = parts.method == http::Method::PUT
        && parts.headers.contains_key(http::header::IF_MATCH)
        && parts.uri.path().contains("servers(");
    if replaces_state && take_one(&shared.conflicts_left) {
        write_first(shared).await?;
    }
    shared.http.send(upstream).await
}

fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// Another writer: the entity as it is, plus a mark, written with its current ETag.
async fn write_first(shared: &Shared) -> anyhow::Result<()> {
    let table = &shared.storage.table;
    let now = SystemTime::now();
    let read = shared.http.send(table.get(SERVER_ID, "state", now)).await?;
    let entity = parse_entity(&read)?.context("no state entity to race with")?;
    let mut properties = entity.properties.clone();
    properties.insert("RacedAt".into(), format!("{now:?}").into());
    let write = table.replace(SERVER_ID, "state", &properties, &entity.etag, now);
    etag(&shared.http.send(write).await?).context("the racing write")?;
    Ok(())
}
