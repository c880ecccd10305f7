//! TLS for `https://` endpoints: rustls with the `ring` provider.
//!
//! Trust = the system's root certificates (`rustls-native-certs`: the OS store, or
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` when set) plus the certificates of an extra CA file: the
//! endpoint's `certificate` key, else the OpenTelemetry variables
//! `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_CERTIFICATE`, else `OTEL_EXPORTER_OTLP_CERTIFICATE`.
//! A client certificate and key (mutual TLS) come the same way (`client_certificate` /
//! `client_key`, `OTEL_EXPORTER_OTLP[_SIGNAL]_CLIENT_CERTIFICATE` / `..._CLIENT_KEY`).
//!
//! Everything is read when the exporter is built (and by `validate`), so a bad path or a file
//! without certificates is a configuration error naming its field, never a failed export.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::{Diagnostic, EndpointConfig};

/// The three OTLP signals, in the order of [`TlsFiles::for_signals`].
pub(crate) const SIGNALS: [&str; 3] = ["traces", "metrics", "logs"];

/// One file and where its path came from (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    pub path: PathBuf,
    /// The endpoint key (`certificate`) or the variable (`$OTEL_EXPORTER_OTLP_CERTIFICATE`).
    pub origin: String,
    /// The endpoint key this file belongs to, for diagnostics (`certificate`, `client_key`, ...).
    pub field: &'static str,
}

impl Source {
    fn describe(&self) -> String {
        format!("{} = '{}'", self.origin, self.path.display())
    }
}

/// The TLS files of one signal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub ca: Option<Source>,
    pub client_cert: Option<Source>,
    pub client_key: Option<Source>,
}

fn env_path(var: &str) -> Option<(PathBuf, String)> {
    let v = std::env::var_os(var)?;
    (!v.is_empty()).then(|| (PathBuf::from(v), format!("${var}")))
}

fn pick(key: &Option<String>, field: &'static str, signal: &str, var: &str) -> Option<Source> {
    if let Some(p) = key.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        return Some(Source { path: PathBuf::from(p), origin: field.to_string(), field });
    }
    let specific = format!("OTEL_EXPORTER_OTLP_{}_{var}", signal.to_ascii_uppercase());
    env_path(&specific).or_else(|| env_path(&format!("OTEL_EXPORTER_OTLP_{var}"))).map(|(path, origin)| Source { path, origin, field })
}

impl TlsFiles {
    /// The files of each signal (traces, metrics, logs): endpoint keys win over the
    /// signal's variable, which wins over the general one.
    pub fn for_signals(config: &EndpointConfig) -> [TlsFiles; 3] {
        SIGNALS.map(|s| TlsFiles {
            ca: pick(&config.certificate, "certificate", s, "CERTIFICATE"),
            client_cert: pick(&config.client_certificate, "client_certificate", s, "CLIENT_CERTIFICATE"),
            client_key: pick(&config.client_key, "client_key", s, "CLIENT_KEY"),
        })
    }
}

/// The system's roots, loaded once per process: (certificates, problems met while loading).
fn native_roots() -> &'static (Vec<CertificateDer<'static>>, Vec<String>) {
    static ROOTS: OnceLock<(Vec<CertificateDer<'static>>, Vec<String>)> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let r = rustls_native_certs::load_native_certs();
        (r.certs, r.errors.iter().map(|e| e.to_string()).collect())
    })
}

fn read(src: &Source) -> Result<Vec<u8>, Diagnostic> {
    std::fs::read(&src.path).map_err(|e| Diagnostic::error(src.field, format!("{}: cannot read the file: {e}", src.describe())))
}

fn certs(src: &Source) -> Result<Vec<CertificateDer<'static>>, Diagnostic> {
    let bytes = read(src)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| Diagnostic::error(src.field, format!("{}: not a valid PEM file: {e}", src.describe())))?;
    if certs.is_empty() {
        return Err(Diagnostic::error(src.field, format!("{}: no PEM certificate (BEGIN CERTIFICATE) in the file", src.describe())));
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration trusting the system roots plus `files.ca`, with the client
/// certificate of `files` when given. Errors name the field (`certificate`, `client_key`, ...).
pub(crate) fn client_config(files: &TlsFiles) -> Result<ClientConfig, Diagnostic> {
    let mut roots = RootCertStore::empty();
    let (native, native_errors) = native_roots();
    roots.add_parsable_certificates(native.iter().cloned());
    if let Some(ca) = &files.ca {
        let (added, _) = roots.add_parsable_certificates(certs(ca)?);
        if added == 0 {
            return Err(Diagnostic::error(ca.field, format!("{}: none of its certificates is a usable trust anchor", ca.describe())));
        }
    }
    if roots.is_empty() {
        let why = if native_errors.is_empty() { String::new() } else { format!(" ({})", native_errors.join("; ")) };
        return Err(Diagnostic::error(
            "certificate",
            format!(
                "no trusted root certificates: the system store had none{why}; install the system's CA certificates \
                 (ca-certificates), set SSL_CERT_FILE, or give a CA file with `certificate` or OTEL_EXPORTER_OTLP_CERTIFICATE"
            ),
        ));
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Diagnostic::error("endpoint", format!("TLS setup: {e}")))?
        .with_root_certificates(roots);
    match (&files.client_cert, &files.client_key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(c), None) => Err(Diagnostic::error(
            "client_key",
            format!("{} is set but no client key is (client_key or OTEL_EXPORTER_OTLP_CLIENT_KEY)", c.describe()),
        )),
        (None, Some(k)) => Err(Diagnostic::error(
            "client_certificate",
            format!("{} is set but no client certificate is (client_certificate or OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE)", k.describe()),
        )),
        (Some(c), Some(k)) => {
            let chain = certs(c)?;
            let bytes = read(k)?;
            let key = PrivateKeyDer::from_pem_slice(&bytes)
                .map_err(|e| Diagnostic::error(k.field, format!("{}: no PEM private key in the file: {e}", k.describe())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Diagnostic::error(k.field, format!("{} with {}: {e}", c.describe(), k.describe())))
        }
    }
}

/// A configuration that trusts nothing: the unused TLS side of a plain `http://` client.
pub(crate) fn unused_config() -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}

/// Client configurations per signal for an https endpoint; signals with the same files share
/// one (`index[signal]` points into `configs`).
pub(crate) struct TlsSetup {
    pub configs: Vec<Arc<ClientConfig>>,
    pub index: [usize; 3],
}

pub(crate) fn setup(config: &EndpointConfig) -> Result<TlsSetup, Vec<Diagnostic>> {
    let files = TlsFiles::for_signals(config);
    let mut distinct: Vec<&TlsFiles> = Vec::new();
    let mut index = [0; 3];
    for (i, f) in files.iter().enumerate() {
        index[i] = match distinct.iter().position(|d| *d == f) {
            Some(p) => p,
            None => {
                distinct.push(f);
                distinct.len() - 1
            }
        };
    }
    let mut configs = Vec::new();
    let mut errors = Vec::new();
    for f in distinct {
        match client_config(f) {
            Ok(c) => configs.push(Arc::new(c)),
            Err(d) if !errors.contains(&d) => errors.push(d),
            Err(_) => {}
        }
    }
    if errors.is_empty() {
        Ok(TlsSetup { configs, index })
    } else {
        Err(errors)
    }
}

/// The TLS of the core's `https` ATOF stream sinks (installed by [`crate::install`]): the
/// same rustls setup, over the sink's blocking socket.
#[derive(Debug, Default)]
pub(crate) struct StreamSinkTls;

struct StreamSinkClient(Arc<ClientConfig>);

impl baton::export::atof_stream::TlsProvider for StreamSinkTls {
    fn client(&self, ca_file: Option<&std::path::Path>) -> Result<Arc<dyn baton::export::atof_stream::TlsClient>, String> {
        let files = TlsFiles {
            ca: ca_file.map(|p| Source { path: p.to_path_buf(), origin: "certificate".into(), field: "certificate" }),
            ..Default::default()
        };
        let config = client_config(&files).map_err(|d| d.message)?;
        Ok(Arc::new(StreamSinkClient(Arc::new(config))))
    }
}

impl baton::export::atof_stream::TlsClient for StreamSinkClient {
    fn wrap(&self, tcp: std::net::TcpStream, server_name: &str) -> Result<Box<dyn baton::export::atof_stream::TlsStream>, String> {
        let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
            .map_err(|e| format!("'{server_name}' is not a valid TLS server name: {e}"))?;
        let conn = rustls::ClientConnection::new(self.0.clone(), name).map_err(|e| format!("TLS: {e}"))?;
        Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The endpoint's key wins, then the signal's variable, then the general one. (The only
    /// test of this binary that sets OTEL_EXPORTER_OTLP_* variables.)
    #[test]
    fn files_per_signal_follow_the_otel_precedence() {
        std::env::set_var("OTEL_EXPORTER_OTLP_CERTIFICATE", "/general.pem");
        std::env::set_var("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "/metrics.pem");
        std::env::set_var("OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY", "/logs.key");
        let [traces, metrics, logs] = TlsFiles::for_signals(&EndpointConfig::default());
        let ca = |f: &TlsFiles| f.ca.as_ref().map(|s| (s.path.display().to_string(), s.origin.clone()));
        assert_eq!(ca(&traces), Some(("/general.pem".into(), "$OTEL_EXPORTER_OTLP_CERTIFICATE".into())));
        assert_eq!(ca(&metrics), Some(("/metrics.pem".into(), "$OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE".into())));
        assert_eq!(ca(&logs), ca(&traces));
        assert_eq!(logs.client_key.as_ref().map(|s| s.field), Some("client_key"));
        assert_eq!(traces.client_key, None);

        let keyed = EndpointConfig { certificate: Some(" /mine.pem ".into()), ..Default::default() };
        for f in TlsFiles::for_signals(&keyed) {
            assert_eq!(ca(&f), Some(("/mine.pem".into(), "certificate".into())));
        }
        // an unreadable file is an error naming its field and origin
        let err = client_config(&TlsFiles::for_signals(&EndpointConfig::default())[1]).unwrap_err();
        assert_eq!(err.field, "certificate");
        assert!(err.message.contains("$OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE = '/metrics.pem'"), "{err}");
        for v in ["OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY"] {
            std::env::remove_var(v);
        }
    }
}
