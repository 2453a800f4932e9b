//! Inbound HTTP: the listener, routing, Spin's request headers, body limits and request logs.

use crate::router::{self, Router};
use crate::runtime::{self, App};
use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use wasmtime_wasi_http::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::body::HyperOutgoingBody;

/// Largest inbound request body accepted; Discord interactions and queue kicks are tiny.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Everything a request needs: the loaded app and its public routes.
pub struct Frontend {
    pub app: Arc<App>,
    pub router: Router,
    /// The listener's address, used as authority when a client sends no `Host`.
    pub local_addr: SocketAddr,
}

/// How long a stopping server lets open connections finish the requests they are serving.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` flips; then takes no new ones, lets each open
/// connection answer the request it is serving and close (up to [`DRAIN_LIMIT`]), and aborts
/// what is left.
pub async fn serve(
    listener: TcpListener,
    frontend: Arc<Frontend>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, client)) => {
                    let frontend = frontend.clone();
                    let stop = shutdown.clone();
                    connections.spawn(serve_connection(stream, client, frontend, stop));
                }
                Err(e) => log::warn!("accept failed: {e}"),
            },
        }
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_LIMIT, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        log::warn!("connections still open after {DRAIN_LIMIT:?}; closing them");
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    client: SocketAddr,
    fe: Arc<Frontend>,
    mut stop: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |req| {
        let fe = fe.clone();
        async move { Ok::<_, Infallible>(handle(&fe, req, client).await) }
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = stopping(&mut stop) => {
            // Finish the request in flight, then close instead of waiting for another.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = served {
        log::debug!("connection from {client}: {e}");
    }
}

/// Resolves once the server is stopping (or its owner is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Routes and runs one inbound request, logging one line for it. Also used by the tick.
pub async fn handle<B>(
    fe: &Frontend,
    req: Request<B>,
    client: SocketAddr,
) -> Response<HyperOutgoingBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let method = req.method().clone();
    // The path only: a query may carry a secret and is never logged.
    let path = req.uri().path().to_string();
    let routed = match before_routing(&req, &path) {
        Some(answered) => Err(answered),
        None => fe.router.route(&path).ok_or_else(not_found),
    };
    let (component, response, instantiate) = match routed {
        Err(response) => ("-".to_string(), response, None),
        Ok(m) => {
            let id = m.component.clone();
            let (response, instantiate) = route_to_component(fe, req, m, client).await;
            (id, response, instantiate)
        }
    };
    let instantiate = instantiate
        .map(|d| format!(" instantiate={}us", d.as_micros()))
        .unwrap_or_default();
    log::info!(
        "{method} {path} {component} {} {}us{instantiate}",
        response.status().as_u16(),
        started.elapsed().as_micros()
    );
    response
}

/// What Spin answers before looking at routes: a `Host` that names a component of the app
/// (`*.spin.internal`) is refused (Spin closes the connection without an answer; here it is a
/// 400 that says why), and its health check answers.
fn before_routing<B>(req: &Request<B>, path: &str) -> Option<Response<HyperOutgoingBody>> {
    let host = req.headers().get(http::header::HOST).map(|h| h.as_bytes());
    let host = host.map(|h| String::from_utf8_lossy(h).to_ascii_lowercase());
    let host_name = host
        .as_deref()
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name));
    if host_name.is_some_and(|h| h.ends_with(INTERNAL_HOST_SUFFIX)) {
        return Some(plain(
            StatusCode::BAD_REQUEST,
            "Host names a component of this app; only the app itself may call it",
        ));
    }
    (path == HEALTH_PATH).then(|| plain(StatusCode::OK, "OK"))
}

/// Spin answers its own health check; scripts and orchestrators wait on it.
const HEALTH_PATH: &str = "/.well-known/spin/health";
const INTERNAL_HOST_SUFFIX: &str = ".spin.internal";

fn not_found() -> Response<HyperOutgoingBody> {
    plain(StatusCode::NOT_FOUND, "Not Found")
}

async fn route_to_component<B>(
    fe: &Frontend,
    req: Request<B>,
    m: router::RouteMatch,
    client: SocketAddr,
) -> (Response<HyperOutgoingBody>, Option<Duration>)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(component) = fe.app.component(&m.component).cloned() else {
        let response = plain(StatusCode::INTERNAL_SERVER_ERROR, "component not loaded");
        return (response, None);
    };
    let req = match prepare_request(fe, req, &m, client).await {
        Ok(req) => req,
        Err(response) => return (response, None),
    };
    match fe.app.invoke(&component, req).await {
        Ok(invoked) => (invoked.response, Some(invoked.instantiate)),
        Err(e) => {
            log::error!("{e:#}");
            let response = plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            (response, None)
        }
    }
}

/// Buffers the body (bounded by [`MAX_BODY_BYTES`]) and adds Spin's headers.
async fn prepare_request<B>(
    fe: &Frontend,
    req: Request<B>,
    m: &router::RouteMatch,
    client: SocketAddr,
) -> Result<Request<HyperOutgoingBody>, Response<HyperOutgoingBody>>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut parts, body) = req.into_parts();
    // Spin hands header values to the guest as strings, and fails the request when one is not
    // UTF-8.
    if let Some((name, _)) = parts
        .headers
        .iter()
        .find(|(_, value)| std::str::from_utf8(value.as_bytes()).is_err())
    {
        log::warn!("header {name}: value is not UTF-8");
        return Err(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
        ));
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return Err(plain(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large"))
        }
        Err(BodyError::Broken(e)) => {
            log::debug!("reading request body: {e}");
            return Err(plain(StatusCode::BAD_REQUEST, "Bad Request"));
        }
    };
    let host = match parts.headers.get(http::header::HOST) {
        Some(h) => h.to_str().unwrap_or_default().to_string(),
        None => fe.local_addr.to_string(),
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let full_url = format!("http://{host}{path_and_query}");
    let mut headers = router::spin_headers(m, &full_url, &client.to_string());
    // wasi-http needs an authority: take it from Host, or the listener when a client omits it.
    headers.push(("host", host));
    runtime::set_headers(&mut parts.headers, headers);
    Ok(Request::from_parts(parts, full_body(body)))
}

enum BodyError {
    TooLarge,
    Broken(String),
}

async fn read_body<B>(body: B) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Refuse early on a declared size, before reading anything.
    if body.size_hint().lower() > MAX_BODY_BYTES as u64 {
        return Err(BodyError::TooLarge);
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(e) => Err(BodyError::Broken(e.to_string())),
    }
}

/// A small text response generated by the host itself.
pub fn plain(status: StatusCode, text: &'static str) -> Response<HyperOutgoingBody> {
    let mut resp = Response::new(full_body(Bytes::from_static(text.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    resp
}

/// A complete in-memory body in the type wasi-http uses for both directions.
pub fn full_body(bytes: Bytes) -> HyperOutgoingBody {
    Full::new(bytes)
        .map_err(|never: Infallible| -> ErrorCode { match never {} })
        .boxed_unsync()
}

/// Binds the listener (only the address given; tests pass 127.0.0.1:0).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}
