//! The hyper server: `/metrics` (or the configured path), `/`, `/healthz`.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, VARY,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::auth::BasicAuth;
use super::coalesce::Coalescer;
use super::tls::Tls;
use super::{auth, landing, negotiate};
use crate::exporter::ConfigReport;

pub struct ServerOptions {
    pub metrics_path: String,
    /// From `--web.config.file`: serve HTTPS instead of HTTP.
    pub tls: Option<Arc<Tls>>,
    /// From `--web.config.file`: require basic auth on every path, as the
    /// exporter toolkit does.
    pub auth: Option<Arc<BasicAuth>>,
}

struct App {
    scraper: Coalescer,
    reports: Arc<Vec<ConfigReport>>,
    metrics_path: String,
    auth: Option<Arc<BasicAuth>>,
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(users) = &app.auth {
        if !users.allows(req.headers().get(AUTHORIZATION)).await {
            return Ok(auth::unauthorized());
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET and HEAD\n",
        ));
    }
    let path = req.uri().path();
    if path == app.metrics_path {
        let header = |name| {
            req.headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let format = negotiate::format_from_accept(header(ACCEPT));
        let gzip = negotiate::wants_gzip(header(ACCEPT_ENCODING));
        let body = match app.scraper.scrape(format).await {
            Ok(body) => body,
            Err(e) => {
                log::error!("{e}");
                return Ok(text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    format!("{e}\n"),
                ));
            }
        };
        let mut response = if gzip {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            match enc.write_all(&body).and_then(|_| enc.finish()) {
                Ok(compressed) => {
                    let mut r = text(StatusCode::OK, format.content_type(), compressed);
                    r.headers_mut()
                        .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    r
                }
                Err(_) => text(StatusCode::OK, format.content_type(), body),
            }
        } else {
            text(StatusCode::OK, format.content_type(), body)
        };
        response
            .headers_mut()
            .insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
        return Ok(response);
    }
    Ok(match path {
        "/" => text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            landing::render(&app.reports, &app.metrics_path),
        ),
        "/healthz" => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n",
        ),
    })
}

/// Serves HTTP/1 on one connection, plain or TLS, until it closes or a
/// graceful shutdown ends it.
async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Arc<App>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = http1::Builder::new().serve_connection(
        TokioIo::new(stream),
        service_fn(move |req| handle(app.clone(), req)),
    );
    if let Err(e) = watcher.watch(conn).await {
        log::debug!("connection from {peer}: {e}");
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish
/// (for at most a few seconds).
pub async fn serve(
    listener: TcpListener,
    scraper: Coalescer,
    reports: Arc<Vec<ConfigReport>>,
    opts: ServerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let app = Arc::new(App {
        scraper,
        reports,
        metrics_path: opts.metrics_path,
        auth: opts.auth,
    });
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer): (_, SocketAddr) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of fds and the like: back off rather than spin.
                        log::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (app, watcher) = (app.clone(), graceful.watcher());
                match &opts.tls {
                    Some(tls) => {
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            match tls.accept(stream).await {
                                Ok(stream) => serve_connection(stream, peer, app, watcher).await,
                                Err(e) => log::debug!("TLS handshake with {peer}: {e}"),
                            }
                        });
                    }
                    None => {
                        tokio::spawn(serve_connection(stream, peer, app, watcher));
                    }
                }
            }
            _ = &mut shutdown => break,
        }
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => log::warn!("shutdown: gave up waiting for open connections"),
    }
    Ok(())
}
