//! Sending a guest's request over the network, once `allowed_outbound_hosts` let it through.
//!
//! Plain HTTP goes through one client per app whose idle connections are kept and reused, as
//! Spin's outbound HTTP does by default: a guest that calls the same service on every request
//! (the queue, the table) does not pay a new connection each time, here or on Spin. HTTPS, which
//! only a developer pointing the local host at real services uses, goes through
//! wasmtime-wasi-http's own sender, a connection per request.

use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::body::HyperOutgoingBody;
use wasmtime_wasi_http::types::{
    default_send_request, HostFutureIncomingResponse, IncomingResponse, OutgoingRequestConfig,
};

/// The app's outbound connections.
pub struct Outgoing {
    http: Client<HttpConnector, HyperOutgoingBody>,
}

impl Outgoing {
    pub fn new() -> Outgoing {
        // Without TCP_NODELAY, as Spin's connector: a guest that sends a request's head and body
        // in two writes meets the same delayed-ACK stall here as on Spin.
        Outgoing {
            http: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    /// Starts sending `request`; the guest polls the answer.
    pub fn send(
        &self,
        mut request: hyper::Request<HyperOutgoingBody>,
        config: OutgoingRequestConfig,
    ) -> HostFutureIncomingResponse {
        if config.use_tls {
            return default_send_request(request, config);
        }
        // The client writes the Host header from the URI, as Spin's does.
        request.headers_mut().remove(http::header::HOST);
        let client = self.http.clone();
        let handle =
            wasmtime_wasi::runtime::spawn(
                async move { Ok(send_http(client, request, config).await) },
            );
        HostFutureIncomingResponse::pending(handle)
    }
}

async fn send_http(
    client: Client<HttpConnector, HyperOutgoingBody>,
    request: hyper::Request<HyperOutgoingBody>,
    config: OutgoingRequestConfig,
) -> Result<IncomingResponse, ErrorCode> {
    let response = tokio::time::timeout(config.first_byte_timeout, client.request(request))
        .await
        .map_err(|_| ErrorCode::ConnectionReadTimeout)?
        .map_err(|e| error_code(&e))?;
    Ok(IncomingResponse {
        resp: response.map(|body| {
            body.map_err(wasmtime_wasi_http::hyper_response_error)
                .boxed_unsync()
        }),
        worker: None,
        between_bytes_timeout: config.between_bytes_timeout,
    })
}

/// What the guest is told when the request could not be sent.
fn error_code(error: &hyper_util::client::legacy::Error) -> ErrorCode {
    use std::error::Error as _;
    if error.is_connect() {
        return ErrorCode::ConnectionRefused;
    }
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(code) = cause.downcast_ref::<ErrorCode>() {
            return code.clone();
        }
        source = cause.source();
    }
    ErrorCode::HttpProtocolError
}
