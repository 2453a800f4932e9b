//! A plain HTTP/1 client on loopback for the sandbox's own calls (storage setup, playing Discord).

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl HttpClient {
    pub async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> anyhow::Result<http::Response<Vec<u8>>> {
        let what = format!("{} {}", request.method(), request.uri().path());
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            self.inner
                .request(request.map(|b| Full::new(Bytes::from(b)))),
        )
        .await
        .with_context(|| format!("{what} timed out"))?
        .with_context(|| format!("{what} failed"))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes().to_vec();
        Ok(http::Response::from_parts(parts, body))
    }
}
