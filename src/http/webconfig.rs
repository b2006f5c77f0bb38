//! `--web.config.file`: TLS and basic-auth settings in the Prometheus
//! exporter-toolkit schema, so one web config can be shared with
//! node_exporter and the other exporters an operator already runs.
//!
//! Everything is checked at start-up and reported as `file:line: key: message`
//! like the metric configs: a typo in a security setting must stop the
//! exporter rather than quietly serve without TLS or auth.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::error::ConfigError;
use crate::config::locate::Locator;
use crate::config::yaml::{parse_yaml, read_yaml_file};

/// Parsed and checked `--web.config.file`.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The file as shown in messages.
    pub file: String,
    pub tls: Option<TlsSettings>,
    /// Username to bcrypt hash; empty when basic auth is off.
    pub basic_auth_users: BTreeMap<String, String>,
    /// Added to every response (`http_server_config.headers`).
    pub headers: Vec<(String, String)>,
    locator: Locator,
}

impl WebConfig {
    /// An error at `key`, pointing at its line in the file.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        error_at(&self.file, &self.locator, key, message)
    }
}

/// Where PEM data comes from: the toolkit accepts both a path (`cert_file`)
/// and the PEM text itself (`cert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    File(PathBuf),
    Inline(String),
}

/// The toolkit's client-auth policies, named as in Go's `crypto/tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    /// Ask for a certificate; accept the connection without one, and do not
    /// verify one that is sent.
    RequestClientCert,
    /// Insist on a certificate, but do not verify it.
    RequireAnyClientCert,
    /// Verify a certificate against the client CA if one is sent.
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    const NAMES: &'static [(&'static str, ClientAuth)] = &[
        ("NoClientCert", ClientAuth::NoClientCert),
        ("RequestClientCert", ClientAuth::RequestClientCert),
        ("RequireAnyClientCert", ClientAuth::RequireAnyClientCert),
        // The toolkit's old spelling of RequireAnyClientCert.
        ("RequireClientCert", ClientAuth::RequireAnyClientCert),
        (
            "VerifyClientCertIfGiven",
            ClientAuth::VerifyClientCertIfGiven,
        ),
        (
            "RequireAndVerifyClientCert",
            ClientAuth::RequireAndVerifyClientCert,
        ),
    ];

    fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// TLS protocol versions as the toolkit spells them. rustls implements 1.2
/// and 1.3 only, and TLS10/TLS11 are refused rather than silently raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    fn parse(s: &str) -> Option<TlsVersion> {
        Some(match s {
            "TLS10" => TlsVersion::Tls10,
            "TLS11" => TlsVersion::Tls11,
            "TLS12" => TlsVersion::Tls12,
            "TLS13" => TlsVersion::Tls13,
            _ => return None,
        })
    }
}

/// bcrypt costs above this are refused. Cost 10 (the toolkit's advice)
/// takes about 60 ms here and each step doubles it; every wrong password an
/// anonymous client sends costs one check.
pub const MAX_BCRYPT_COST: u32 = 12;

/// TLS 1.2 cipher suites the exporter's TLS stack implements, by the names
/// Go (and so the toolkit) uses. TLS 1.3 suites are not configurable, as in Go.
pub const CIPHER_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Key-exchange curves by Go's names; P-521 has no implementation here.
pub const CURVES: &[&str] = &["X25519", "CurveP256", "CurveP384"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert: PemSource,
    pub key: PemSource,
    pub client_auth: ClientAuth,
    pub client_ca: Option<PemSource>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 suites allowed, in preference order; `None` is the default set.
    pub cipher_suites: Option<Vec<String>>,
    pub curve_preferences: Option<Vec<String>>,
    pub prefer_server_cipher_suites: bool,
}

impl TlsSettings {
    /// Files to watch for certificate rotation.
    pub fn files(&self) -> Vec<PathBuf> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|s| match s {
                PemSource::File(p) => Some(p.clone()),
                PemSource::Inline(_) => None,
            })
            .collect()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, Option<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_ca: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    /// Known to the toolkit; refused below rather than by serde, so the
    /// message says it is unsupported rather than unknown.
    client_allowed_sans: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// Accepted for compatibility; the exporter speaks HTTP/1.1 only, which
    /// is all Prometheus needs.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// Reads and checks a web config file.
pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
    let file = path.display().to_string();
    let text = read_yaml_file(path, "web config")?;
    // Relative paths in the file are relative to the file, as in the toolkit,
    // so a config directory can be moved as a whole.
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&file, dir, &text)
}

/// Parses a web config text; `dir` anchors relative certificate paths.
pub fn parse(file: &str, dir: &Path, text: &str) -> Result<WebConfig, ConfigError> {
    let (raw, locator): (Option<RawWebConfig>, _) = parse_yaml(file, text)?;
    let raw = raw.unwrap_or_default();
    let err = |key: &str, message: String| error_at(file, &locator, key, message);

    // The exporter toolkit's four security headers, with its value rules.
    let mut headers = Vec::new();
    for (name, value) in raw
        .http_server_config
        .as_ref()
        .and_then(|h| h.headers.clone())
        .unwrap_or_default()
    {
        let key = format!("http_server_config.headers.{name}");
        let canonical = match name.to_ascii_lowercase().as_str() {
            "content-security-policy" => "Content-Security-Policy",
            "strict-transport-security" => "Strict-Transport-Security",
            "x-frame-options" => {
                if !matches!(value.to_ascii_lowercase().as_str(), "deny" | "sameorigin") {
                    return Err(err(
                        &key,
                        format!("X-Frame-Options is deny or sameorigin, not {value:?}"),
                    ));
                }
                "X-Frame-Options"
            }
            "x-content-type-options" => {
                if !value.eq_ignore_ascii_case("nosniff") {
                    return Err(err(
                        &key,
                        format!("X-Content-Type-Options is nosniff, not {value:?}"),
                    ));
                }
                "X-Content-Type-Options"
            }
            _ => {
                return Err(err(
                    &key,
                    format!(
                        "header {name:?} cannot be set; the headers that can are \
                         Content-Security-Policy, Strict-Transport-Security, X-Frame-Options and \
                         X-Content-Type-Options"
                    ),
                ))
            }
        };
        if value.is_empty() {
            continue;
        }
        if hyper::header::HeaderValue::from_str(&value).is_err() {
            return Err(err(&key, format!("{value:?} is not a valid header value")));
        }
        headers.push((canonical.to_string(), value));
    }

    let mut basic_auth_users = BTreeMap::new();
    for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
        let key = format!("basic_auth_users.{user}");
        if user.is_empty() || user.contains(':') {
            return Err(err(
                &key,
                "a username must be non-empty and cannot contain ':' (HTTP basic auth splits at the first ':')".into(),
            ));
        }
        let hash = hash.unwrap_or_default();
        match hash.parse::<bcrypt::HashParts>() {
            Err(e) => {
                return Err(err(
                    &key,
                    format!(
                        "not a bcrypt hash ({e}); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
                    ),
                ))
            }
            Ok(parts) if parts.get_cost() > MAX_BCRYPT_COST => {
                return Err(err(
                    &key,
                    format!(
                        "bcrypt cost {} is above the maximum of {MAX_BCRYPT_COST}: each check of a \
                         new password would take seconds of CPU, which anyone can make the exporter \
                         spend; rehash with `htpasswd -nBC 10`",
                        parts.get_cost()
                    ),
                ))
            }
            Ok(_) => {}
        }
        basic_auth_users.insert(user, hash);
    }

    let tls = match raw.tls_server_config {
        Some(t) => tls_settings(t, dir, &err)?,
        None => None,
    };

    // The toolkit serves plain HTTP without auth for a file that turns
    // nothing on. An operator who passes a web config means to secure the
    // endpoint, so failing open would be the wrong surprise.
    if tls.is_none() && basic_auth_users.is_empty() && headers.is_empty() {
        return Err(error_at(
            file,
            &locator,
            "",
            "turns on neither TLS (`tls_server_config` with `cert_file` and `key_file`) nor \
             basic auth (`basic_auth_users`) nor response headers; to serve plain HTTP without \
             auth, drop --web.config.file",
        ));
    }

    Ok(WebConfig {
        file: file.to_string(),
        tls,
        basic_auth_users,
        headers,
        locator,
    })
}

fn tls_settings(
    t: RawTls,
    dir: &Path,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<TlsSettings>, ConfigError> {
    const K: &str = "tls_server_config";
    if t.client_allowed_sans.is_some() {
        return Err(err(
            &format!("{K}.client_allowed_sans"),
            "not supported by ebpf-exporter; restrict clients with a dedicated client CA".into(),
        ));
    }
    // As in the toolkit, a section that sets none of these leaves TLS off.
    let any_set = [
        &t.cert_file,
        &t.key_file,
        &t.cert,
        &t.key,
        &t.client_auth_type,
        &t.client_ca_file,
        &t.client_ca,
    ]
    .iter()
    .any(|v| v.as_deref().is_some_and(|s| !s.is_empty()));
    if !any_set {
        return Ok(None);
    }

    let source = |file_key: &str,
                  file: Option<String>,
                  inline_key: &str,
                  inline: Option<String>|
     -> Result<Option<PemSource>, ConfigError> {
        let file = file.filter(|s| !s.is_empty());
        let inline = inline.filter(|s| !s.is_empty());
        match (file, inline) {
            (Some(_), Some(_)) => Err(err(
                &format!("{K}.{inline_key}"),
                format!("set either `{file_key}` or `{inline_key}`, not both"),
            )),
            (Some(f), None) => Ok(Some(PemSource::File(dir.join(f)))),
            (None, Some(pem)) => Ok(Some(PemSource::Inline(pem))),
            (None, None) => Ok(None),
        }
    };
    let cert = source("cert_file", t.cert_file, "cert", t.cert)?
        .ok_or_else(|| err(K, "missing `cert_file` (or inline `cert`)".into()))?;
    let key = source("key_file", t.key_file, "key", t.key)?
        .ok_or_else(|| err(K, "missing `key_file` (or inline `key`)".into()))?;
    let client_ca = source("client_ca_file", t.client_ca_file, "client_ca", t.client_ca)?;

    let client_auth = match t.client_auth_type.as_deref().filter(|s| !s.is_empty()) {
        None => ClientAuth::NoClientCert,
        Some(name) => ClientAuth::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                err(
                    &format!("{K}.client_auth_type"),
                    format!(
                        "unknown client_auth_type {name:?}; one of NoClientCert, RequestClientCert, \
                         RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
                    ),
                )
            })?,
    };
    if client_ca.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err(err(
            &format!("{K}.client_ca_file"),
            "a client CA is set but client_auth_type is NoClientCert; \
             set client_auth_type (e.g. RequireAndVerifyClientCert)"
                .into(),
        ));
    }
    if client_ca.is_none() && client_auth.verifies() {
        return Err(err(
            &format!("{K}.client_auth_type"),
            "verifying client certificates needs `client_ca_file` (or inline `client_ca`)".into(),
        ));
    }

    let version = |key: &str, v: Option<String>, default: TlsVersion| match v
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        None => Ok(default),
        Some(s) => TlsVersion::parse(s).ok_or_else(|| {
            err(
                &format!("{K}.{key}"),
                format!("unknown TLS version {s:?}; one of TLS10, TLS11, TLS12, TLS13"),
            )
        }),
    };
    let min_version = version("min_version", t.min_version, TlsVersion::Tls12)?;
    if min_version < TlsVersion::Tls12 {
        return Err(err(
            &format!("{K}.min_version"),
            "TLS 1.0 and 1.1 are broken and not served; the lowest min_version is TLS12".into(),
        ));
    }
    let max_version = version("max_version", t.max_version, TlsVersion::Tls13)?;
    if max_version < TlsVersion::Tls12 {
        return Err(err(
            &format!("{K}.max_version"),
            "TLS 1.0 and 1.1 are not implemented; the lowest max_version is TLS12".into(),
        ));
    }
    if min_version > max_version {
        return Err(err(
            &format!("{K}.min_version"),
            "min_version is above max_version".into(),
        ));
    }

    let names = |key: &str, list: Option<Vec<String>>, known: &[&str]| {
        let Some(list) = list else { return Ok(None) };
        for (i, name) in list.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(err(
                    &format!("{K}.{key}[{i}]"),
                    format!("unsupported {name:?}; supported: {}", known.join(", ")),
                ));
            }
        }
        if list.is_empty() {
            return Ok(None);
        }
        Ok(Some(list))
    };
    let cipher_suites = names("cipher_suites", t.cipher_suites, CIPHER_SUITES)?;
    if cipher_suites.is_some() && min_version >= TlsVersion::Tls13 {
        return Err(err(
            &format!("{K}.cipher_suites"),
            "cipher_suites only applies to TLS 1.2, which min_version TLS13 rules out".into(),
        ));
    }
    let curve_preferences = names("curve_preferences", t.curve_preferences, CURVES)?;

    Ok(Some(TlsSettings {
        cert,
        key,
        client_auth,
        client_ca,
        min_version,
        max_version,
        cipher_suites,
        curve_preferences,
        prefer_server_cipher_suites: t.prefer_server_cipher_suites.unwrap_or(true),
    }))
}

fn error_at(file: &str, locator: &Locator, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_string(),
        line: locator.line(key),
        key: key.to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cost 4 keeps the unit tests fast.
    fn hash() -> String {
        bcrypt::hash("secret", 4).expect("bcrypt hashes")
    }

    fn parse_str(text: &str) -> Result<WebConfig, ConfigError> {
        parse("web.yml", Path::new("/etc/ee"), text)
    }

    #[test]
    fn a_file_that_turns_nothing_on_is_refused() {
        for text in [
            "",
            "# nothing\n",
            "{}\n",
            "tls_server_config:\n",
            "http_server_config:\n  http2: true\n",
            "basic_auth_users: {}\n",
        ] {
            let e = parse_str(text).expect_err(text);
            assert!(
                e.to_string().starts_with("web.yml:1: turns on neither TLS"),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn old_tls_and_costly_hashes_are_refused() {
        let base = "tls_server_config:\n  cert_file: a\n  key_file: b\n";
        for v in ["TLS10", "TLS11"] {
            let e = parse_str(&format!("{base}  min_version: {v}\n")).expect_err(v);
            assert_eq!(
                e.to_string(),
                "web.yml:4: key `tls_server_config.min_version`: TLS 1.0 and 1.1 are broken and not served; the lowest min_version is TLS12"
            );
        }
        // A cost-13 hash, made by `htpasswd -nBC 13`: refused without hashing.
        let costly = "$2y$13$S2nSP5Yy2pXDOTPCJ7yLdOJhOhhq4OY9Q.5j7eT/3AQn9lCdM.Ylq";
        let e = parse_str(&format!("basic_auth_users:\n  alice: {costly}\n")).expect_err("cost");
        assert_eq!(
            (e.key.as_str(), e.line),
            ("basic_auth_users.alice", Some(2))
        );
        assert!(
            e.message
                .contains("bcrypt cost 13 is above the maximum of 12"),
            "{e}"
        );
        let ok = "$2y$12$S2nSP5Yy2pXDOTPCJ7yLdOJhOhhq4OY9Q.5j7eT/3AQn9lCdM.Ylq";
        assert!(parse_str(&format!("basic_auth_users:\n  alice: {ok}\n")).is_ok());
    }

    #[test]
    fn full_tls_section_with_relative_paths() {
        let c = parse_str(
            "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: /abs/server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  \
             min_version: TLS13\n",
        )
        .expect("valid");
        let t = c.tls.expect("tls on");
        assert_eq!(t.cert, PemSource::File("/etc/ee/tls/server.crt".into()));
        assert_eq!(t.key, PemSource::File("/abs/server.key".into()));
        assert_eq!(t.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(t.min_version, TlsVersion::Tls13);
        assert_eq!(t.files().len(), 3);
    }

    #[test]
    fn unknown_keys_point_at_their_line() {
        let e = parse_str("tls_server_config:\n  cert_file: a\n  key_fil: b\n").expect_err("typo");
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.key, "tls_server_config");
        assert!(e.message.contains("unknown field `key_fil`"), "{e}");
        let e = parse_str("basic_auth_user:\n  a: b\n").expect_err("typo");
        assert!(e.message.contains("unknown field `basic_auth_user`"), "{e}");
    }

    #[test]
    fn policy_mistakes_are_refused() {
        let base = "tls_server_config:\n  cert_file: a\n  key_file: b\n";
        let cases = [
            (
                "  client_auth_type: Maybe\n",
                "tls_server_config.client_auth_type",
                4,
            ),
            (
                "  client_ca_file: ca\n",
                "tls_server_config.client_ca_file",
                4,
            ),
            (
                "  client_auth_type: VerifyClientCertIfGiven\n",
                "tls_server_config.client_auth_type",
                4,
            ),
            ("  min_version: TLS14\n", "tls_server_config.min_version", 4),
            ("  max_version: TLS11\n", "tls_server_config.max_version", 4),
            (
                "  min_version: TLS13\n  max_version: TLS12\n",
                "tls_server_config.min_version",
                4,
            ),
            (
                "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
                "tls_server_config.cipher_suites[0]",
                4,
            ),
            (
                "  curve_preferences:\n    - X25519\n    - CurveP521\n",
                "tls_server_config.curve_preferences[1]",
                6,
            ),
            ("  cert: inline\n", "tls_server_config.cert", 4),
            (
                "  client_allowed_sans: [a]\n",
                "tls_server_config.client_allowed_sans",
                4,
            ),
        ];
        for (extra, key, line) in cases {
            let e = parse_str(&format!("{base}{extra}")).expect_err(extra);
            assert_eq!(
                (e.key.as_str(), e.line),
                (key, Some(line)),
                "{extra:?}: {e}"
            );
        }
        let e = parse_str("tls_server_config:\n  cert_file: a\n").expect_err("no key");
        assert!(e.message.contains("key_file"), "{e}");
    }

    #[test]
    fn basic_auth_users_need_bcrypt_hashes() {
        let hash = hash();
        let c = parse_str(&format!("basic_auth_users:\n  alice: {hash}\n")).expect("valid");
        assert_eq!(c.basic_auth_users["alice"], hash);
        let e = parse_str("basic_auth_users:\n  alice: ok\n  bob: plaintext\n")
            .expect_err("not a hash");
        assert_eq!(e.key, "basic_auth_users.alice");
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("bcrypt"), "{e}");
        let e = parse_str(&format!("basic_auth_users:\n  \"a:b\": {hash}\n")).expect_err("colon");
        assert!(e.message.contains("':'"), "{e}");
        let e = parse_str("basic_auth_users:\n  alice:\n").expect_err("null hash");
        assert_eq!(e.key, "basic_auth_users.alice");
    }

    #[test]
    fn toolkit_http_section() {
        let hash = hash();
        assert!(parse_str(&format!(
            "http_server_config:\n  http2: true\nbasic_auth_users:\n  a: {hash}\n"
        ))
        .is_ok());
        let ok = parse_str("http_server_config:\n  headers:\n    x-frame-options: deny\n    Strict-Transport-Security: max-age=31536000\n")
            .expect("toolkit headers");
        assert_eq!(
            ok.headers,
            vec![
                (
                    "Strict-Transport-Security".to_string(),
                    "max-age=31536000".to_string()
                ),
                ("X-Frame-Options".to_string(), "deny".to_string())
            ]
        );
        let e = parse_str("http_server_config:\n  headers:\n    X-Frame-Options: allow\n")
            .expect_err("value");
        assert!(e.to_string().contains("deny or sameorigin"), "{e}");
        let e = parse_str("http_server_config:\n  headers:\n    Set-Cookie: a=b\n")
            .expect_err("headers");
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn unreadable_file_is_an_error_naming_it() {
        let e = load(Path::new("/nonexistent/web.yml")).expect_err("missing");
        assert!(
            e.to_string()
                .starts_with("/nonexistent/web.yml: cannot read"),
            "{e}"
        );
    }
}
