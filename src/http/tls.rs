//! TLS for the HTTP server, built from a web config's `tls_server_config`.
//!
//! Certificates are short-lived where cert-manager or similar rotate them in
//! place, so the files are re-checked on every new connection and reloaded
//! when they change; a broken rotation keeps the last good certificate rather
//! than taking the endpoint down.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{self, CryptoProvider, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{
    self, DigitallySignedStruct, DistinguishedName, NamedGroup, RootCertStore, ServerConfig,
    SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion,
};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::webconfig::{ClientAuth, PemSource, TlsSettings, TlsVersion, WebConfig};
use crate::config::error::ConfigError;
use crate::host::files::{self, FileStamp};

/// A stalled client must not hold a connection slot and task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What identifies a file's content cheaply: a changed stamp means reload.
type Stamp = Option<FileStamp>;

struct Loaded {
    stamps: Vec<Stamp>,
    acceptor: TlsAcceptor,
    /// Stamps of a rotation that failed to load, so it is logged once.
    failed: Option<Vec<Stamp>>,
}

/// The TLS side of the server: hands out an acceptor per connection.
pub struct Tls {
    web: WebConfig,
    settings: TlsSettings,
    files: Vec<PathBuf>,
    state: Mutex<Loaded>,
}

impl Tls {
    /// Builds the TLS setup from a web config; `None` when it has no TLS.
    /// Fails on unreadable or inconsistent certificates and keys.
    pub fn new(web: &WebConfig) -> Result<Option<Tls>, ConfigError> {
        let Some(settings) = web.tls.clone() else {
            return Ok(None);
        };
        let files = settings.files();
        let stamps = stamps(&files);
        let acceptor = TlsAcceptor::from(server_config(web, &settings)?);
        Ok(Some(Tls {
            web: web.clone(),
            settings,
            files,
            state: Mutex::new(Loaded {
                stamps,
                acceptor,
                failed: None,
            }),
        }))
    }

    /// The acceptor for a new connection, reloading rotated files first.
    fn acceptor(&self) -> TlsAcceptor {
        let now = stamps(&self.files);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if now != state.stamps && state.failed.as_ref() != Some(&now) {
            match server_config(&self.web, &self.settings) {
                Ok(config) => {
                    log::info!("TLS: reloaded certificates from {}", self.web.file);
                    state.acceptor = TlsAcceptor::from(config);
                    state.stamps = now;
                    state.failed = None;
                }
                Err(e) => {
                    log::warn!("TLS: keeping the previous certificates: {e}");
                    state.failed = Some(now);
                }
            }
        }
        state.acceptor.clone()
    }

    /// Runs the handshake, bounded in time.
    pub async fn accept(&self, stream: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        let acceptor = self.acceptor();
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }
}

fn stamps(files: &[PathBuf]) -> Vec<Stamp> {
    files.iter().map(|f| FileStamp::of(f)).collect()
}

/// Builds the rustls config; every error names the web config key at fault.
pub fn server_config(web: &WebConfig, t: &TlsSettings) -> Result<Arc<ServerConfig>, ConfigError> {
    const K: &str = "tls_server_config";
    let provider = Arc::new(provider(t));
    let versions: Vec<&'static SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| t.min_version.max(TlsVersion::Tls12) <= *v && *v <= t.max_version)
    .map(|(_, p)| p)
    .collect();

    let (cert_key, key_key) = match (&t.cert, &t.key) {
        (PemSource::File(_), _) => ("cert_file", "key_file"),
        _ => ("cert", "key"),
    };
    let chain_pem = read_pem(web, &format!("{K}.{cert_key}"), &t.cert)?;
    let chain = certificates(web, &format!("{K}.{cert_key}"), &t.cert, &chain_pem)?;
    let key_pem = read_pem(web, &format!("{K}.{key_key}"), &t.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        web.error(
            &format!("{K}.{key_key}"),
            format!("{}: no usable private key: {e}", describe(&t.key)),
        )
    })?;

    let verifier = client_verifier(web, t, provider.clone())?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| web.error(K, format!("TLS versions: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            web.error(
                &format!("{K}.{key_key}"),
                format!("the key does not fit the certificate: {e}"),
            )
        })?;
    config.ignore_client_order = t.prefer_server_cipher_suites;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// ring's provider, narrowed and ordered by the configured suites and curves.
fn provider(t: &TlsSettings) -> CryptoProvider {
    let mut p = crypto::ring::default_provider();
    if let Some(names) = &t.cipher_suites {
        let (tls13, tls12): (Vec<SupportedCipherSuite>, Vec<SupportedCipherSuite>) = p
            .cipher_suites
            .iter()
            .partition(|s| s.version() == &rustls::version::TLS13);
        let mut suites = tls13;
        for name in names {
            suites.extend(
                tls12
                    .iter()
                    .filter(|s| format!("{:?}", s.suite()) == *name)
                    .copied(),
            );
        }
        p.cipher_suites = suites;
    }
    if let Some(names) = &t.curve_preferences {
        let groups = p.kx_groups.clone();
        p.kx_groups = names
            .iter()
            .filter_map(|name| {
                let want = match name.as_str() {
                    "X25519" => NamedGroup::X25519,
                    "CurveP256" => NamedGroup::secp256r1,
                    "CurveP384" => NamedGroup::secp384r1,
                    _ => return None,
                };
                groups.iter().find(|g| g.name() == want).copied()
            })
            .collect();
    }
    p
}

fn client_verifier(
    web: &WebConfig,
    t: &TlsSettings,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, ConfigError> {
    const K: &str = "tls_server_config";
    let verify = |optional: bool| -> Result<Arc<dyn ClientCertVerifier>, ConfigError> {
        let Some(ca) = &t.client_ca else {
            // webconfig refuses verifying policies without a CA.
            return Err(web.error(K, "no client CA"));
        };
        let key = match ca {
            PemSource::File(_) => format!("{K}.client_ca_file"),
            PemSource::Inline(_) => format!("{K}.client_ca"),
        };
        let pem = read_pem(web, &key, ca)?;
        let mut roots = RootCertStore::empty();
        for cert in certificates(web, &key, ca, &pem)? {
            roots
                .add(cert)
                .map_err(|e| web.error(&key, format!("{}: {e}", describe(ca))))?;
        }
        let builder =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder
            .build()
            .map_err(|e| web.error(&key, format!("{}: {e}", describe(ca))))
    };
    Ok(match t.client_auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert => Arc::new(AnyClientCert::new(false, &provider)),
        ClientAuth::RequireAnyClientCert => Arc::new(AnyClientCert::new(true, &provider)),
        ClientAuth::VerifyClientCertIfGiven => verify(true)?,
        ClientAuth::RequireAndVerifyClientCert => verify(false)?,
    })
}

fn describe(src: &PemSource) -> String {
    match src {
        PemSource::File(p) => p.display().to_string(),
        PemSource::Inline(_) => "inline PEM".to_string(),
    }
}

fn read_pem(web: &WebConfig, key: &str, src: &PemSource) -> Result<Vec<u8>, ConfigError> {
    match src {
        PemSource::File(p) => files::read_regular(p, files::MAX_PEM_BYTES)
            .map_err(|e| web.error(key, format!("cannot read {}: {e}", p.display()))),
        PemSource::Inline(s) => Ok(s.as_bytes().to_vec()),
    }
}

fn certificates(
    web: &WebConfig,
    key: &str,
    src: &PemSource,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| web.error(key, format!("{}: bad PEM: {e}", describe(src))))?;
    if certs.is_empty() {
        return Err(web.error(key, format!("{}: no CERTIFICATE block", describe(src))));
    }
    Ok(certs)
}

/// The toolkit's RequestClientCert and RequireAnyClientCert: a client
/// certificate is asked for (or required) but its chain is not checked. The
/// handshake signature still is, so the client holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyClientCert {
    fn new(mandatory: bool, provider: &CryptoProvider) -> Self {
        AnyClientCert {
            mandatory,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::webconfig;

    #[test]
    fn suites_and_curves_narrow_the_provider() {
        let web = webconfig::parse(
            "w.yml",
            std::path::Path::new("/"),
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  \
             cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n  \
             curve_preferences: [CurveP384, X25519]\n",
        )
        .expect("valid");
        let p = provider(web.tls.as_ref().expect("tls"));
        let tls12: Vec<String> = p
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(tls12, ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]);
        assert!(p.cipher_suites.len() > 1, "TLS 1.3 suites stay");
        let groups: Vec<NamedGroup> = p.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(groups, [NamedGroup::secp384r1, NamedGroup::X25519]);
    }

    #[test]
    fn every_advertised_suite_and_curve_exists() {
        let p = crypto::ring::default_provider();
        let have: Vec<String> = p
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        for name in webconfig::CIPHER_SUITES {
            assert!(
                have.iter().any(|h| h == name),
                "{name} missing from {have:?}"
            );
        }
        assert_eq!(webconfig::CURVES.len(), p.kx_groups.len());
    }

    #[test]
    fn missing_certificate_file_names_the_key() {
        let web = webconfig::parse(
            "w.yml",
            std::path::Path::new("/nonexistent"),
            "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n",
        )
        .expect("valid");
        let e = match Tls::new(&web) {
            Err(e) => e,
            Ok(_) => panic!("loaded a missing file"),
        };
        assert_eq!(e.key, "tls_server_config.cert_file");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("/nonexistent/c.pem"), "{e}");
    }
}
