//! ATOF stream sinks: events POSTed to an HTTP endpoint, one per request (`http_post`) or as
//! NDJSON batches (`ndjson`).
//!
//! The subscriber only hands the serialized line to a bounded queue; a worker thread of its
//! own does the network I/O, so a receiver that is slow or down never blocks delivery to the
//! other subscribers. When the queue is full, lines are dropped and counted.
//!
//! `https://` URLs go through a [`TlsProvider`]: the core carries no TLS stack (it stays
//! dependency-light and builds for wasm32), so TLS is a seam that a crate with one fills —
//! `baton_otel::install()` installs its rustls client, the same one its OTLP export uses.
//! Without a provider an `https` sink is reported as `unsupported_value`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::plugin::{join, Diagnostics};

/// How events are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One POST per event, body = the event JSON.
    HttpPost,
    /// Batches of events, body = JSON lines (`application/x-ndjson`).
    Ndjson,
}

/// TLS for `https://` stream sinks, installed once per process ([`install_tls_provider`]).
pub trait TlsProvider: Send + Sync {
    /// A client trusting the system's root certificates plus those of `ca_file` (a PEM file).
    /// Errors are messages for the user (an unreadable file, no certificate in it, no roots).
    fn client(&self, ca_file: Option<&Path>) -> std::result::Result<Arc<dyn TlsClient>, String>;
}

/// One TLS client configuration (see [`TlsProvider::client`]).
pub trait TlsClient: Send + Sync {
    /// Wraps a connected socket (its read and write timeouts already set, so the handshake is
    /// bounded by them) in a TLS session that verifies the server as `server_name` (a host
    /// name or an IP address). The handshake may run at the first read or write.
    fn wrap(&self, tcp: std::net::TcpStream, server_name: &str) -> std::result::Result<Box<dyn TlsStream>, String>;
}

/// A byte stream (a TLS session over a socket).
pub trait TlsStream: Read + Write + Send {}
impl<T: Read + Write + Send> TlsStream for T {}

static TLS: OnceLock<Arc<dyn TlsProvider>> = OnceLock::new();

/// Installs the TLS provider of `https` stream sinks (once per process). Returns false if one
/// was installed already.
pub fn install_tls_provider(provider: Arc<dyn TlsProvider>) -> bool {
    TLS.set(provider).is_ok()
}

fn tls_provider() -> Option<&'static Arc<dyn TlsProvider>> {
    TLS.get()
}

/// A stream sink's settings (the reference's keys, plus `certificate`).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamConfig {
    pub url: String,
    pub transport: Transport,
    pub headers: BTreeMap<String, String>,
    /// Name of an environment variable holding more headers, `k=v,k2=v2`.
    pub header_env: Option<String>,
    pub timeout: Duration,
    /// Lines waiting to be sent before new ones are dropped.
    pub queue_capacity: usize,
    /// `https` URLs: a PEM file of CA certificates trusted besides the system's roots.
    pub certificate: Option<String>,
}

impl StreamConfig {
    /// Parses and checks a `{type = "stream", ...}` sink; problems go to `d`.
    pub fn parse(obj: &Map<String, Value>, at: &str, d: &mut Diagnostics) -> Option<StreamConfig> {
        let Some(url) = d.get_str(obj, at, "url") else {
            d.error("missing_field", &join(at, "url"), "missing; a stream sink needs the receiver's url");
            return None;
        };
        let tls = match parse_url(url) {
            Ok(u) => u.tls,
            Err(e) => {
                d.error("invalid_value", &join(at, "url"), e);
                return None;
            }
        };
        let transport = match d.get_str(obj, at, "transport").unwrap_or("http_post") {
            "http_post" => Transport::HttpPost,
            "ndjson" => Transport::Ndjson,
            other => {
                d.unsupported_value(&join(at, "transport"), format!("'{other}' is not one of http_post, ndjson"));
                return None;
            }
        };
        let mut headers = BTreeMap::new();
        if let Some(h) = d.get_object(obj, at, "headers") {
            for (k, v) in h {
                match v.as_str() {
                    Some(s) => {
                        headers.insert(k.clone(), s.to_string());
                    }
                    None => d.error("invalid_type", &format!("{}.headers.{k}", at), "expected a string header value"),
                }
            }
        }
        let header_env = d.get_str(obj, at, "header_env").map(String::from);
        if let Some(var) = &header_env {
            if std::env::var_os(var).is_none() {
                d.warning(
                    "missing_env",
                    &join(at, "header_env"),
                    format!("environment variable {var} is not set; no headers will come from it"),
                );
            }
        }
        let timeout_ms = d.get_u64(obj, at, "timeout_millis").unwrap_or(5_000);
        if timeout_ms == 0 {
            d.error("invalid_value", &join(at, "timeout_millis"), "must be greater than 0");
            return None;
        }
        if cfg!(target_arch = "wasm32") {
            d.unsupported_value(at, "stream sinks need sockets, which the wasm build does not have");
            return None;
        }
        let certificate = d.get_str(obj, at, "certificate").map(String::from);
        if tls {
            let Some(provider) = tls_provider() else {
                d.unsupported_value(
                    &join(at, "url"),
                    format!(
                        "'{url}': https stream sinks need a TLS provider, which the core does not carry; \
                         it comes with baton-otel (Rust: call baton_otel::install()); else send over http:// to a local collector"
                    ),
                );
                return None;
            };
            if let Err(e) = provider.client(certificate.as_deref().map(Path::new)) {
                d.error("invalid_value", &join(at, "certificate"), e);
                return None;
            }
        } else if certificate.is_some() {
            d.warning("invalid_value", &join(at, "certificate"), "only used for https:// URLs; this one is http://");
        }
        Some(StreamConfig {
            url: url.to_string(),
            transport,
            headers,
            header_env,
            timeout: Duration::from_millis(timeout_ms),
            queue_capacity: 10_000,
            certificate,
        })
    }
}

/// A parsed stream sink URL.
#[derive(Debug, PartialEq)]
struct Url {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

/// An `http://` or `https://` URL (default ports 80 and 443).
fn parse_url(url: &str) -> std::result::Result<Url, String> {
    let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => return Err(format!("'{url}' is not an http:// or https:// URL")),
    };
    let default_port = if tls { 443 } else { 80 };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let bad_port = |p: &str| format!("'{url}' has an invalid port '{p}'");
    let (host, port) = match authority.strip_prefix('[') {
        // [IPv6]:port
        Some(v6) => {
            let (h, rest) = v6.split_once(']').ok_or_else(|| format!("'{url}' has an unclosed IPv6 address"))?;
            match rest.strip_prefix(':') {
                Some(p) => (h, p.parse::<u16>().map_err(|_| bad_port(p))?),
                None if rest.is_empty() => (h, default_port),
                None => return Err(format!("'{url}' has text after its IPv6 address")),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad_port(p))?),
            None => (authority, default_port),
        },
    };
    if host.is_empty() {
        return Err(format!("'{url}' has no host"));
    }
    Ok(Url { tls, host: host.to_string(), port, path: path.to_string() })
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::{open, AtofStreamExporter};

#[cfg(target_arch = "wasm32")]
pub fn open(_: StreamConfig) -> Result<Arc<dyn crate::middleware::Subscriber>> {
    Err(Error::invalid_state("ATOF stream sinks are not available in the wasm build"))
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::net::{TcpStream, ToSocketAddrs};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
    use std::sync::Arc;
    use std::sync::Mutex;

    use super::*;
    use crate::event::Event;
    use crate::middleware::Subscriber;

    enum Msg {
        Line(Vec<u8>),
        Flush(SyncSender<()>),
    }

    /// The stream sink subscriber.
    pub struct AtofStreamExporter {
        tx: Mutex<Option<SyncSender<Msg>>>,
        worker: Mutex<Option<std::thread::JoinHandle<()>>>,
        stats: Arc<Stats>,
        timeout: Duration,
    }

    #[derive(Default)]
    struct Stats {
        sent: AtomicU64,
        dropped: AtomicU64,
        failed: AtomicU64,
        /// Set by `close`: the worker discards (and counts) what is still queued, so closing
        /// takes at most one request's timeout even when the receiver is slow.
        stopping: std::sync::atomic::AtomicBool,
        last_error: Mutex<Option<String>>,
    }

    impl Stats {
        fn fail(&self, n: u64, error: String) -> u64 {
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
            self.failed.fetch_add(n, Ordering::Relaxed)
        }
    }

    /// Starts a stream sink (its worker thread) for `config`.
    pub fn open(config: StreamConfig) -> Result<Arc<dyn Subscriber>> {
        Ok(Arc::new(AtofStreamExporter::start(config)?))
    }

    impl AtofStreamExporter {
        pub fn start(config: StreamConfig) -> Result<AtofStreamExporter> {
            let url = parse_url(&config.url).map_err(Error::invalid_argument)?;
            let tls = if url.tls {
                let provider = tls_provider().ok_or_else(|| {
                    Error::invalid_argument(format!(
                        "ATOF stream sink '{}': https needs a TLS provider (baton_otel::install() installs one)",
                        config.url
                    ))
                })?;
                let client = provider
                    .client(config.certificate.as_deref().map(Path::new))
                    .map_err(|e| Error::invalid_argument(format!("ATOF stream sink '{}': certificate: {e}", config.url)))?;
                Some(client)
            } else {
                None
            };
            let mut headers = config.headers.clone();
            if let Some(var) = &config.header_env {
                if let Ok(v) = std::env::var(var) {
                    for pair in v.split(',').filter(|p| !p.trim().is_empty()) {
                        if let Some((k, v)) = pair.split_once('=') {
                            headers.insert(k.trim().to_string(), v.trim().to_string());
                        }
                    }
                }
            }
            let (tx, rx) = sync_channel(config.queue_capacity.max(1));
            let stats = Arc::new(Stats::default());
            let worker_stats = stats.clone();
            let timeout = config.timeout;
            let transport = config.transport;
            let worker = std::thread::Builder::new()
                .name("baton-atof-stream".into())
                .spawn(move || {
                    run(rx, Target { host: url.host, port: url.port, path: url.path, headers, timeout, tls }, transport, worker_stats)
                })
                .map_err(|e| Error::internal(format!("cannot start the ATOF stream worker: {e}")))?;
            Ok(AtofStreamExporter { tx: Mutex::new(Some(tx)), worker: Mutex::new(Some(worker)), stats, timeout })
        }

        /// Events sent successfully.
        pub fn sent(&self) -> u64 {
            self.stats.sent.load(Ordering::Relaxed)
        }
        /// Events dropped because the queue was full or the worker had stopped.
        pub fn dropped(&self) -> u64 {
            self.stats.dropped.load(Ordering::Relaxed)
        }
        /// Events whose POST failed (receiver down, non-2xx, timeout, TLS refused).
        pub fn failed(&self) -> u64 {
            self.stats.failed.load(Ordering::Relaxed)
        }
        /// Why the last POST failed, if one did.
        pub fn last_error(&self) -> Option<String> {
            self.stats.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
        }

        fn send(&self, msg: Msg) -> bool {
            let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref().map(|tx| tx.try_send(msg)) {
                Some(Ok(())) => true,
                Some(Err(TrySendError::Full(_))) | Some(Err(TrySendError::Disconnected(_))) | None => false,
            }
        }
    }

    impl Subscriber for AtofStreamExporter {
        fn on_event(&self, event: &Event) -> Result<()> {
            let mut line = Vec::with_capacity(384 + event.data.as_json().len());
            event.write_json(&mut line);
            if !self.send(Msg::Line(line)) {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return Err(Error::new(crate::ErrorKind::Upstream, "ATOF stream sink queue is full; event dropped"));
            }
            Ok(())
        }

        /// Waits (bounded by the timeout, twice) until every queued line was attempted.
        fn flush(&self) -> Result<()> {
            let (done_tx, done_rx) = sync_channel(1);
            let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            let Some(tx) = guard.as_ref() else { return Ok(()) };
            // A blocking send: a flush is rare, and waiting for room is what it is for.
            if tx.send_timeout_compat(Msg::Flush(done_tx), self.timeout * 2).is_err() {
                return Err(Error::new(crate::ErrorKind::Timeout, "ATOF stream sink did not accept the flush in time"));
            }
            drop(guard);
            done_rx.recv_timeout(self.timeout * 2).map_err(|_| Error::new(crate::ErrorKind::Timeout, "ATOF stream sink flush timed out"))
        }

        fn close(&self) -> Result<()> {
            let flushed = self.flush();
            self.stats.stopping.store(true, Ordering::SeqCst);
            self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(w) = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = w.join();
            }
            flushed
        }
    }

    /// `SyncSender::send` with a deadline (std has none): retry `try_send` until it passes.
    trait SendTimeout {
        fn send_timeout_compat(&self, msg: Msg, timeout: Duration) -> std::result::Result<(), ()>;
    }
    impl SendTimeout for SyncSender<Msg> {
        fn send_timeout_compat(&self, mut msg: Msg, timeout: Duration) -> std::result::Result<(), ()> {
            let deadline = std::time::Instant::now() + timeout;
            loop {
                match self.try_send(msg) {
                    Ok(()) => return Ok(()),
                    Err(TrySendError::Disconnected(_)) => return Err(()),
                    Err(TrySendError::Full(m)) if std::time::Instant::now() < deadline => {
                        msg = m;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(TrySendError::Full(_)) => return Err(()),
                }
            }
        }
    }

    struct Target {
        host: String,
        port: u16,
        path: String,
        headers: BTreeMap<String, String>,
        timeout: Duration,
        /// Set for https URLs.
        tls: Option<Arc<dyn TlsClient>>,
    }

    impl Target {
        /// One HTTP/1.1 POST; `Ok` on a 2xx status.
        fn post(&self, content_type: &str, body: &[u8]) -> std::result::Result<(), String> {
            let addr = (self.host.as_str(), self.port).to_socket_addrs().map_err(|e| e.to_string())?.next().ok_or("no address")?;
            let tcp = TcpStream::connect_timeout(&addr, self.timeout).map_err(|e| e.to_string())?;
            tcp.set_write_timeout(Some(self.timeout)).map_err(|e| e.to_string())?;
            tcp.set_read_timeout(Some(self.timeout)).map_err(|e| e.to_string())?;
            // the TLS handshake happens on the socket, so the timeouts above bound it too
            let mut stream: Box<dyn TlsStream> = match &self.tls {
                Some(tls) => tls.wrap(tcp, &self.host)?,
                None => Box::new(tcp),
            };
            let mut req = format!(
                "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
                self.path,
                self.host,
                self.port,
                body.len()
            );
            for (k, v) in &self.headers {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
            req.push_str("\r\n");
            stream.write_all(req.as_bytes()).and_then(|_| stream.write_all(body)).map_err(|e| e.to_string())?;
            let mut head = [0u8; 16];
            let n = stream.read(&mut head).map_err(|e| e.to_string())?;
            let status = std::str::from_utf8(&head[..n]).ok().and_then(|s| s.split_whitespace().nth(1)).unwrap_or("");
            if status.starts_with('2') {
                Ok(())
            } else {
                Err(format!("HTTP status '{status}'"))
            }
        }
    }

    const NDJSON_BATCH: usize = 256;
    const NDJSON_LINGER: Duration = Duration::from_millis(50);

    fn run(rx: Receiver<Msg>, target: Target, transport: Transport, stats: Arc<Stats>) {
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let send_batch = |batch: &mut Vec<Vec<u8>>| {
            if batch.is_empty() {
                return;
            }
            let n = batch.len() as u64;
            let body: Vec<u8> = batch.iter().flat_map(|l| l.iter().copied().chain(std::iter::once(b'\n'))).collect();
            match target.post("application/x-ndjson", &body) {
                Ok(()) => stats.sent.fetch_add(n, Ordering::Relaxed),
                Err(e) => stats.fail(n, e),
            };
            batch.clear();
        };
        loop {
            let msg = if batch.is_empty() { rx.recv().map_err(|_| RecvTimeoutError::Disconnected) } else { rx.recv_timeout(NDJSON_LINGER) };
            if stats.stopping.load(Ordering::SeqCst) {
                match msg {
                    Ok(Msg::Line(_)) => {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Ok(Msg::Flush(done)) => {
                        let _ = done.try_send(());
                        continue;
                    }
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => {
                        stats.dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        return;
                    }
                }
            }
            match msg {
                Ok(Msg::Line(line)) => match transport {
                    Transport::HttpPost => {
                        match target.post("application/json", &line) {
                            Ok(()) => stats.sent.fetch_add(1, Ordering::Relaxed),
                            Err(e) => stats.fail(1, e),
                        };
                    }
                    Transport::Ndjson => {
                        batch.push(line);
                        if batch.len() >= NDJSON_BATCH {
                            send_batch(&mut batch);
                        }
                    }
                },
                Ok(Msg::Flush(done)) => {
                    send_batch(&mut batch);
                    let _ = done.try_send(());
                }
                Err(RecvTimeoutError::Timeout) => send_batch(&mut batch),
                Err(RecvTimeoutError::Disconnected) => {
                    send_batch(&mut batch);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(tls: bool, host: &str, port: u16, path: &str) -> Url {
        Url { tls, host: host.into(), port, path: path.into() }
    }

    #[test]
    fn parses_http_and_https_urls() {
        assert_eq!(parse_url("http://127.0.0.1:4318/v1/atof").unwrap(), url(false, "127.0.0.1", 4318, "/v1/atof"));
        assert_eq!(parse_url("http://collector").unwrap(), url(false, "collector", 80, "/"));
        assert_eq!(parse_url("https://collector").unwrap(), url(true, "collector", 443, "/"));
        assert_eq!(parse_url("https://c:8443/in").unwrap(), url(true, "c", 8443, "/in"));
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("http://:80/").is_err());
        assert!(parse_url("http://h:99999/").is_err());
        assert_eq!(parse_url("http://[::1]:9000/x").unwrap(), url(false, "::1", 9000, "/x"));
        assert!(parse_url("http://[::1/x").is_err());
    }

    /// Without a TLS provider (none is installed in the core's tests) an https sink is
    /// `unsupported_value` naming its url; a `certificate` on an http sink is a warning.
    #[test]
    fn https_without_a_tls_provider_is_unsupported() {
        let rt = crate::Runtime::new(crate::RuntimeConfig::default());
        let diags = |sink: Value| -> Vec<(String, String, String, String)> {
            let doc = serde_json::json!({"version": 1, "components": [{"kind": "observability", "config": {"atof": {"sinks": [sink]}}}]});
            rt.plugin_validate(&doc)
                .into_iter()
                .map(|d| (d.level.as_str().to_string(), d.code.to_string(), d.field.unwrap_or_default(), d.message))
                .collect()
        };
        let at = "components[0].config.atof.sinks[0]";
        let got = diags(serde_json::json!({"type": "stream", "url": "https://collector/atof"}));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].0.as_str(), got[0].1.as_str(), got[0].2.clone()), ("error", "unsupported_value", format!("{at}.url")));
        assert!(got[0].3.contains("TLS provider"), "{got:?}");

        let got = diags(serde_json::json!({"type": "stream", "url": "http://h/atof", "certificate": "ca.pem"}));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].0.as_str(), got[0].2.clone()), ("warning", format!("{at}.certificate")));
    }
}
