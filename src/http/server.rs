//! The hyper server: `/metrics` (or the configured path), `/`, `/healthz`,
//! and `/-/reload` when the lifecycle API is on.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCEPT, ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE,
    RETRY_AFTER, VARY,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::auth::{BasicAuth, Verdict};
use super::coalesce::{ChunkBody, Coalescer, Scraped, Variant};
use super::connections::{Connections, Slot};
use super::tls::Tls;
use super::{auth, landing, lock, negotiate};
use crate::exporter::{ReloadHandle, ReportBoard};
use crate::host::files::FileStamp;

pub struct ServerOptions {
    pub metrics_path: String,
    /// From `--web.config.file`: serve HTTPS instead of HTTP.
    pub tls: Option<Arc<Tls>>,
    /// From `--web.config.file`: require basic auth on every path, as the
    /// exporter toolkit does.
    pub auth: Option<Arc<BasicAuth>>,
    /// `--web.max-connections`, already fitted to the fd limit.
    pub max_connections: usize,
    /// `--web.max-requests`: scrapes in flight at once; 0 for no limit.
    pub max_requests: usize,
    /// `--web.enable-lifecycle`: `POST /-/reload` reloads the configs.
    pub lifecycle: Option<ReloadHandle>,
    /// `--web.config.file`, re-read for users and headers when it changes.
    pub web_config_file: Option<std::path::PathBuf>,
    /// `http_server_config.headers`, added to every response.
    pub headers: Vec<(String, String)>,
}

/// A client must send a request's headers within this long, and an idle
/// keep-alive connection is closed after it (hyper's header timer covers
/// both). Longer than common scrape intervals, so Prometheus keeps its
/// connection between scrapes.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The TLS handshake must finish within this long.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct App {
    scraper: Coalescer,
    reports: ReportBoard,
    lifecycle: Option<ReloadHandle>,
    metrics_path: String,
    /// The web config's users and headers, re-read when its file changes.
    web: LiveWeb,
    /// `None` when unlimited.
    scrapes: Option<Semaphore>,
    max_requests: usize,
}

/// What the web config file sets per request: basic-auth users and
/// response headers. The file is checked at most once a second, and a
/// changed file is applied if it parses (certificates are reloaded by the
/// TLS acceptor the same way); a file that does not parse keeps what runs.
struct LiveWeb {
    file: Option<std::path::PathBuf>,
    auth: std::sync::RwLock<Option<Arc<BasicAuth>>>,
    headers: std::sync::RwLock<Vec<(hyper::header::HeaderName, HeaderValue)>>,
    /// When the file was last looked at, and what it was then.
    checked: std::sync::Mutex<(Option<std::time::Instant>, Option<FileStamp>)>,
}

fn header_pairs(headers: &[(String, String)]) -> Vec<(hyper::header::HeaderName, HeaderValue)> {
    headers
        .iter()
        .filter_map(|(n, v)| {
            Some((
                hyper::header::HeaderName::from_bytes(n.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect()
}

impl LiveWeb {
    fn auth(&self) -> Option<Arc<BasicAuth>> {
        self.refresh();
        self.auth.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn refresh(&self) {
        let Some(path) = &self.file else { return };
        let mut checked = lock(&self.checked);
        if checked
            .0
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        checked.0 = Some(std::time::Instant::now());
        let now = FileStamp::of(path);
        if now == checked.1 {
            return;
        }
        checked.1 = now;
        drop(checked);
        match super::webconfig::load(path) {
            Ok(web) => {
                let mut auth = self.auth.write().unwrap_or_else(|p| p.into_inner());
                match (&*auth, web.basic_auth_users.is_empty()) {
                    (Some(a), false) => a.set_users(&web.basic_auth_users),
                    (None, false) => *auth = BasicAuth::new(&web.basic_auth_users),
                    (Some(_), true) => log::warn!(
                        "{}: no basic_auth_users any more; keeping the previous users (turning auth off takes a restart)",
                        web.file
                    ),
                    (None, true) => {}
                }
                drop(auth);
                *self.headers.write().unwrap_or_else(|p| p.into_inner()) =
                    header_pairs(&web.headers);
                log::info!("web config {} reloaded", web.file);
            }
            Err(e) => log::error!("web config not reloaded, the previous one stays: {e}"),
        }
    }
}

/// A whole body, or a streamed scrape.
pub type ServeBody = Either<Full<Bytes>, ChunkBody>;

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ServeBody> {
    let mut r = Response::new(Either::Left(Full::new(body.into())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Every response, with the web config's headers.
async fn handle(
    app: Arc<App>,
    slot: Arc<Slot>,
    req: Request<Incoming>,
) -> Result<Response<ServeBody>, Infallible> {
    let mut response = respond(&app, &slot, req).await?;
    for (name, value) in app
        .web
        .headers
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    Ok(response)
}

/// Routes a request: authentication first, then `/-/reload`, then the
/// read-only paths, which take GET and HEAD only.
async fn respond(
    app: &Arc<App>,
    slot: &Arc<Slot>,
    req: Request<Incoming>,
) -> Result<Response<ServeBody>, Infallible> {
    let _busy = slot.busy();
    if let Some(refused) = authenticate(app, &req).await {
        return Ok(refused);
    }
    if req.uri().path() == "/-/reload" {
        return Ok(reload(app, req.method()).await);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "only GET and HEAD\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    let path = req.uri().path();
    if path == app.metrics_path {
        return Ok(metrics(app, &req).await);
    }
    Ok(match path {
        "/" => text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            landing::render(
                &app.reports.get(),
                &app.metrics_path,
                app.web.auth().is_some(),
            ),
        ),
        "/healthz" => match app.scraper.health() {
            Ok(()) => text(StatusCode::OK, PLAIN, "ok\n"),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                format!("unhealthy: {why}\n"),
            ),
        },
        _ => text(StatusCode::NOT_FOUND, PLAIN, "not found\n"),
    })
}

const PLAIN: &str = "text/plain; charset=utf-8";

/// With basic auth configured, the response refusing a request that does
/// not pass it; `None` lets it through.
async fn authenticate(app: &App, req: &Request<Incoming>) -> Option<Response<ServeBody>> {
    let users = app.web.auth()?;
    match users.check(req.headers().get(AUTHORIZATION)).await {
        Verdict::Allowed => None,
        Verdict::Denied => Some(auth::unauthorized().map(Either::Left)),
        Verdict::Busy => {
            let mut r = text(
                StatusCode::TOO_MANY_REQUESTS,
                PLAIN,
                "too many password checks in progress; try again\n",
            );
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            Some(r)
        }
    }
}

/// A scrape, in the negotiated format and encoding, within the limit of
/// scrapes in flight.
async fn metrics(app: &App, req: &Request<Incoming>) -> Response<ServeBody> {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let (format, content_type) = negotiate::negotiate(header(ACCEPT));
    let gzip = negotiate::wants_gzip(header(ACCEPT_ENCODING));
    // As client_golang's MaxRequestsInFlight: refuse rather than queue, so
    // a pile-up cannot grow without bound.
    let _permit = match &app.scrapes {
        None => None,
        Some(s) => match s.try_acquire() {
            Ok(p) => Some(p),
            Err(_) => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    PLAIN,
                    format!(
                        "limit of concurrent scrapes reached ({}), try again later\n",
                        app.max_requests
                    ),
                )
            }
        },
    };
    let mut response = match app.scraper.scrape(Variant { format, gzip }).await {
        Ok(Scraped::Whole(body)) => text(StatusCode::OK, content_type, body),
        Ok(Scraped::Streaming(body)) => {
            let mut r = Response::new(Either::Right(body));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, PLAIN, format!("{e}\n")),
    };
    if gzip {
        response
            .headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    response
}

/// `/-/reload`, as Prometheus spells it: POST or PUT, off unless enabled.
/// Answers once a reload that read the configs after the request is done.
async fn reload(app: &App, method: &Method) -> Response<ServeBody> {
    if method != Method::POST && method != Method::PUT {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "only POST and PUT\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST, PUT"));
        return r;
    }
    let Some(reloader) = &app.lifecycle else {
        return text(
            StatusCode::FORBIDDEN,
            PLAIN,
            "the lifecycle API is not enabled (--web.enable-lifecycle)\n",
        );
    };
    match reloader.request_and_wait("POST /-/reload").await {
        Ok(outcome) if outcome.success => text(
            StatusCode::OK,
            PLAIN,
            format!("reloaded: {}\n", outcome.summary()),
        ),
        Ok(outcome) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            PLAIN,
            format!(
                "reload failed: {}\n{}\n",
                outcome.summary(),
                outcome.errors.join("\n")
            ),
        ),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            PLAIN,
            "shutting down: no reload\n",
        ),
    }
}

/// Serves HTTP/1 on one connection, plain or TLS, until it closes, a
/// graceful shutdown ends it, or it is closed to make room for a new one.
async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Arc<App>,
    slot: Slot,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let slot = Arc::new(slot);
    let close = slot.close.clone();
    let svc_slot = slot.clone();
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| handle(app.clone(), svc_slot.clone(), req)),
        );
    let served = watcher.watch(conn);
    tokio::pin!(served);
    tokio::select! {
        result = &mut served => {
            if let Err(e) = result {
                log::debug!("connection from {peer}: {e}");
            }
        }
        _ = close.notified() => log::debug!("closed idle connection from {peer} to make room"),
    }
}

/// Whether a connection's first bytes are an HTTP request line rather than
/// a TLS ClientHello (which starts with the handshake record type, 0x16).
async fn looks_like_http(stream: &tokio::net::TcpStream) -> std::io::Result<bool> {
    let mut head = [0u8; 8];
    loop {
        let n = stream.peek(&mut head).await?;
        if n == 0 {
            return Ok(false);
        }
        if head[0] == 0x16 {
            return Ok(false);
        }
        // A method and a space, or enough bytes to tell.
        let text = &head[..n];
        if n >= 4 || text.contains(&b' ') {
            return Ok(text.iter().take_while(|b| b.is_ascii_uppercase()).count() >= 3);
        }
        // Fewer than 4 bytes so far: wait for the rest (the caller's
        // timeout bounds this).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn refuse_plain_http(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    const BODY: &str = "Client sent an HTTP request to an HTTPS server.\n";
    let reply = format!(
        "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish
/// (for at most a few seconds). Every listener shares one connection bound.
pub async fn serve(
    listeners: Vec<TcpListener>,
    scraper: Coalescer,
    reports: ReportBoard,
    opts: ServerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let app = Arc::new(App {
        scraper,
        reports,
        lifecycle: opts.lifecycle,
        metrics_path: opts.metrics_path,
        web: LiveWeb {
            checked: std::sync::Mutex::new((
                Some(std::time::Instant::now()),
                opts.web_config_file.as_deref().and_then(FileStamp::of),
            )),
            file: opts.web_config_file,
            auth: std::sync::RwLock::new(opts.auth),
            headers: std::sync::RwLock::new(header_pairs(&opts.headers)),
        },
        scrapes: (opts.max_requests > 0).then(|| Semaphore::new(opts.max_requests)),
        max_requests: opts.max_requests,
    });
    let conns = Connections::new(opts.max_connections);
    let graceful = Arc::new(GracefulShutdown::new());
    let mut accepting = tokio::task::JoinSet::new();
    for listener in listeners {
        let (app, conns, graceful, tls) = (
            app.clone(),
            conns.clone(),
            graceful.clone(),
            opts.tls.clone(),
        );
        accepting.spawn(accept_loop(listener, app, conns, graceful, tls));
    }
    shutdown.await;
    accepting.abort_all();
    while accepting.join_next().await.is_some() {}
    let graceful = Arc::try_unwrap(graceful)
        .map_err(|_| std::io::Error::other("accept loops still hold the server"))?;
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => log::warn!("shutdown: gave up waiting for open connections"),
    }
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    conns: Arc<Connections>,
    graceful: Arc<GracefulShutdown>,
    tls: Option<Arc<Tls>>,
) {
    loop {
        conns.room_to_accept().await;
        let (stream, peer): (_, SocketAddr) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                // Out of fds and the like: back off rather than spin.
                log::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = conns.admit() else {
            log::debug!(
                "refused {peer}: all {} connections are serving requests",
                conns.max()
            );
            continue;
        };
        let (app, watcher) = (app.clone(), graceful.watcher());
        match &tls {
            Some(tls) => {
                let tls = tls.clone();
                tokio::spawn(async move {
                    let close = slot.close.clone();
                    // Plain HTTP sent to the TLS port gets a 400 saying so,
                    // as Go's servers answer, instead of a dropped connection.
                    if let Ok(Ok(true)) =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, looks_like_http(&stream)).await
                    {
                        refuse_plain_http(stream).await;
                        return;
                    }
                    tokio::select! {
                        handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)) => match handshake {
                            Ok(Ok(stream)) => serve_connection(stream, peer, app, slot, watcher).await,
                            Ok(Err(e)) => log::debug!("TLS handshake with {peer}: {e}"),
                            Err(_) => log::debug!("TLS handshake with {peer}: timed out"),
                        },
                        _ = close.notified() => {}
                    }
                });
            }
            None => {
                tokio::spawn(serve_connection(stream, peer, app, slot, watcher));
            }
        }
    }
}
