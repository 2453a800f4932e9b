//! The loopback HTTP/1.1 server under every fake: it reads whole requests (up to a limit),
//! hands them to the fake's handler and writes its answer.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::util::{json, Reply};

/// What a fake does with one request. Synchronous: every fake answers from memory.
pub(crate) type Handler = Arc<dyn Fn(http::Request<Bytes>) -> Reply + Send + Sync>;

/// Bodies larger than this are refused; no real request of ours comes close.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub(crate) struct Server {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Server {
    /// Listens on `127.0.0.1:0` and serves until stopped or dropped. The handler is made once
    /// the origin (`http://127.0.0.1:PORT`) is known, since fakes put it in their answers.
    pub(crate) async fn start(
        make_handler: impl FnOnce(String) -> Handler,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let handler = make_handler(format!("http://{addr}"));
        let accept = tokio::spawn(accept_loop(listener, handler));
        Ok(Self { addr, accept })
    }

    /// `http://127.0.0.1:PORT`
    pub(crate) fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, drops every open connection, and returns once the port is closed.
    pub(crate) async fn stop(&mut self) {
        self.accept.abort();
        // The task ends as cancelled; that is the expected outcome, not an error.
        let _ = (&mut self.accept).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Accepts connections until aborted. The connections live in a `JoinSet` owned by this
/// task, so aborting it also ends every connection.
async fn accept_loop(listener: TcpListener, handler: Handler) {
    let mut connections = JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                connections.spawn(serve_connection(stream, handler.clone()));
            }
            // Out of file descriptors or similar: wait a little rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
}

async fn serve_connection(stream: TcpStream, handler: Handler) {
    let service = hyper::service::service_fn(move |request| {
        let handler = handler.clone();
        async move {
            Ok::<_, Infallible>(
                answer(request, &handler)
                    .await
                    .into_response()
                    .map(Full::new),
            )
        }
    });
    // A client that hangs up mid-request is not the fake's problem.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn answer(request: http::Request<Incoming>, handler: &Handler) -> Reply {
    let (parts, body) = request.into_parts();
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => handler(http::Request::from_parts(parts, collected.to_bytes())),
        Err(_) => json(
            413,
            serde_json::json!({ "message": "Request entity too large", "code": 40005 }),
        ),
    }
}
