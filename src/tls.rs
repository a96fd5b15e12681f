//! HTTPS: the certificate liveserve serves with, and telling a TLS connection from plain HTTP on
//! the same port.
//!
//! With `--https` the certificate is signed by a certificate authority made on this machine the
//! first time and kept in the user's data folder (never in the project), so trusting that one
//! authority once makes every later certificate trusted; the certificate itself is made afresh at
//! each start, for the names and addresses being served. With `--cert` and `--key` the user's own
//! (mkcert's, say) is served instead. Either way ALPN offers HTTP/2 and HTTP/1.1.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to start and finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The local authority's names: fixed, so the authority kept on disk signs with the same name
/// it was made with.
const CA_NAME: &str = "liveserve local development CA";

/// How long a certificate made at start is valid: longer than any dev server runs, shorter than
/// browsers accept (398 days).
const LEAF_DAYS: i64 = 30;

/// What serves HTTPS.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    /// The local authority's certificate, for the banner (`None` with `--cert`).
    pub ca_certificate: Option<PathBuf>,
    /// Whether the local authority was made by this start (the banner says how to trust it).
    pub ca_created: bool,
    /// The local authority's certificate (PEM), served to devices that need to trust it.
    authority_pem: Option<Bytes>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Tls")
            .field("ca_certificate", &self.ca_certificate)
            .finish_non_exhaustive()
    }
}

/// Why HTTPS cannot be served; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "--cert and --key go together; give both, or neither (with --https for a local certificate)"
    )]
    HalfPair,
    #[error("{flag} {}: cannot read it: {error}", .path.display())]
    Unreadable {
        flag: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("--cert {}: no PEM certificate in it", .0.display())]
    NoCertificate(PathBuf),
    #[error("--key {}: no PEM private key in it", .0.display())]
    NoKey(PathBuf),
    #[error("--key {} does not belong to the certificate in --cert {}", .key.display(), .cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("--cert {}: {problem}; make a new one (mkcert: `mkcert localhost`) or use --https", .path.display())]
    OutOfDate { path: PathBuf, problem: String },
    #[error("--cert/--key: {0}")]
    Unusable(rustls::Error),
    #[error(
        "no folder for liveserve's local certificate authority: set XDG_DATA_HOME or HOME, or give --cert and --key"
    )]
    NoDataFolder,
    #[error("the local certificate authority in {}: {error}", .folder.display())]
    LocalAuthority {
        folder: PathBuf,
        error: std::io::Error,
    },
    #[error("making a certificate: {0}")]
    Making(#[from] rcgen::Error),
}

impl TlsError {
    /// The setting the error is about, for saying where its value came from.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            TlsError::Unreadable { flag, .. } => Some(flag.trim_start_matches('-')),
            TlsError::NoCertificate(_) | TlsError::OutOfDate { .. } => Some("cert"),
            TlsError::NoKey(_) | TlsError::Mismatch { .. } => Some("key"),
            _ => None,
        }
    }
}

impl Tls {
    /// A certificate for `names` and `addresses` signed by the local authority kept in `folder`
    /// (made there first if it is not).
    pub fn local(folder: &Path, names: &[String], addresses: &[IpAddr]) -> Result<Tls, TlsError> {
        let (authority, ca_created) = LocalAuthority::open_or_create(folder)?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .subject_alt_names
            .extend(addresses.iter().map(|ip| SanType::IpAddress(*ip)));
        params
            .distinguished_name
            .push(DnType::CommonName, "liveserve development server");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(LEAF_DAYS);
        let key = KeyPair::generate()?;
        let issuer = Issuer::new(ca_params(), &authority.key);
        let leaf = params.signed_by(&key, &issuer)?;
        let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut tls = Tls::new(vec![leaf.der().clone()], key)?;
        tls.ca_certificate = Some(authority.certificate);
        tls.authority_pem = Some(authority.pem);
        tls.ca_created = ca_created;
        Ok(tls)
    }

    /// The user's certificate chain and key, from PEM files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let read = |flag, path: &Path| {
            fs::read(path).map_err(|error| TlsError::Unreadable {
                flag,
                path: path.to_path_buf(),
                error,
            })
        };
        let cert_pem = read("--cert", cert)?;
        let key_pem = read("--key", key)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .filter_map(Result::ok)
            .collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate(cert.to_path_buf()));
        }
        check_dates(cert, &chain[0])?;
        let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|_| TlsError::NoKey(key.to_path_buf()))?;
        let signing_key = rustls::crypto::ring::sign::any_supported_type(&private_key)
            .map_err(TlsError::Unusable)?;
        rustls::sign::CertifiedKey::new(chain.clone(), signing_key)
            .keys_match()
            .map_err(|_| TlsError::Mismatch {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            })?;
        Tls::new(chain, private_key)
    }

    fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Unusable)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::Unusable)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_certificate: None,
            ca_created: false,
            authority_pem: None,
        })
    }

    /// The local authority's certificate (PEM; never its key), when it signed ours.
    pub fn authority_pem(&self) -> Option<Bytes> {
        self.authority_pem.clone()
    }

    /// Tells TLS from plain HTTP by the first byte (a TLS handshake record starts with 22) and
    /// finishes the handshake, within [`HANDSHAKE_TIMEOUT`].
    pub(crate) async fn accept(&self, stream: TcpStream) -> Accepted {
        let mut first = [0; 1];
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
            Ok(Ok(1)) if first[0] == 22 => {}
            Ok(Ok(1)) => return Accepted::Plain(stream),
            _ => return Accepted::Failed,
        }
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
            Ok(Ok(stream)) => {
                let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                Accepted::Tls(Box::new(stream), http2)
            }
            Ok(Err(error)) => {
                tracing::debug!("TLS handshake failed: {error}");
                Accepted::Failed
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                Accepted::Failed
            }
        }
    }
}

/// A certificate past its end (or before its start) would make every browser refuse every page
/// with a warning that does not say which file is at fault: refuse to start instead.
fn check_dates(path: &Path, certificate: &CertificateDer<'_>) -> Result<(), TlsError> {
    let out_of_date = |problem: String| TlsError::OutOfDate {
        path: path.to_path_buf(),
        problem,
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|error| out_of_date(format!("not a readable X.509 certificate ({error})")))?;
    let validity = parsed.validity();
    let day = |time: &x509_parser::time::ASN1Time| {
        time::OffsetDateTime::from_unix_timestamp(time.timestamp())
            .map_or_else(|_| time.to_string(), |date| date.date().to_string())
    };
    let now = x509_parser::time::ASN1Time::now();
    if now > validity.not_after {
        return Err(out_of_date(format!(
            "expired on {}",
            day(&validity.not_after)
        )));
    }
    if now < validity.not_before {
        return Err(out_of_date(format!(
            "not valid before {}",
            day(&validity.not_before)
        )));
    }
    Ok(())
}

/// What arrived on the HTTPS port.
pub(crate) enum Accepted {
    /// A TLS connection, and whether it speaks HTTP/2.
    Tls(Box<TlsStream<TcpStream>>, bool),
    /// Plain HTTP: a browser given `http://`; it gets a redirect.
    Plain(TcpStream),
    /// Nothing usable: closed.
    Failed,
}

/// Where liveserve keeps its local authority: `$XDG_DATA_HOME/liveserve`, or the platform's
/// equivalent.
pub fn data_folder() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    let base = if cfg!(windows) {
        var("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|home| home.join("Library/Application Support"))
    } else {
        var("XDG_DATA_HOME").or_else(|| var("HOME").map(|home| home.join(".local/share")))
    };
    base.map(|base| base.join("liveserve"))
}

/// The local certificate authority: its certificate (a file users trust, and its text) and its
/// key.
struct LocalAuthority {
    certificate: PathBuf,
    pem: Bytes,
    key: KeyPair,
}

impl LocalAuthority {
    /// The authority kept in `folder`, or a new one saved there (the key readable by the user
    /// alone); `true` when it was made now.
    fn open_or_create(folder: &Path) -> Result<(LocalAuthority, bool), TlsError> {
        let failed = |error| TlsError::LocalAuthority {
            folder: folder.to_path_buf(),
            error,
        };
        let certificate = folder.join("ca.crt");
        let key_file = folder.join("ca.key");
        if certificate.is_file() && key_file.is_file() {
            let key = KeyPair::from_pem(&fs::read_to_string(&key_file).map_err(failed)?)?;
            let pem = Bytes::from(fs::read(&certificate).map_err(failed)?);
            let authority = LocalAuthority {
                certificate,
                pem,
                key,
            };
            return Ok((authority, false));
        }
        create_private_folder(folder).map_err(failed)?;
        let key = KeyPair::generate()?;
        let made = ca_params().self_signed(&key)?;
        write_private(&key_file, key.serialize_pem().as_bytes()).map_err(failed)?;
        let pem = Bytes::from(made.pem());
        fs::write(&certificate, &pem).map_err(failed)?;
        let authority = LocalAuthority {
            certificate,
            pem,
            key,
        };
        Ok((authority, true))
    }
}

/// The authority's parameters, the same every time: what it signs names it as issuer.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    name.push(DnType::OrganizationName, "liveserve");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    params
}

#[cfg(unix)]
fn create_private_folder(folder: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
}

#[cfg(not(unix))]
fn create_private_folder(folder: &Path) -> std::io::Result<()> {
    fs::create_dir_all(folder)
}

/// Writes a new file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}
