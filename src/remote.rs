//! `liveserve reload` and `liveserve wait`: commands for a running liveserve on this machine, for
//! build scripts, editors and coding agents that would rather not speak HTTP themselves.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http::uri::Authority;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::settings;
use crate::tls;

/// The endpoints these commands use (see `http::control`).
const RELOAD: &str = "/__liveserve/reload";
const STATUS: &str = "/__liveserve/status";

/// The words that start a command for a running server instead of a server. A folder of that
/// name is served with `liveserve ./reload`.
const COMMANDS: [&str; 2] = ["reload", "wait"];

/// How long a running liveserve may take to answer one request: longer, it is wedged, or it is
/// not liveserve.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How often `wait` asks.
const WAIT_POLL: Duration = Duration::from_millis(50);

/// Which running liveserve a command speaks to, and how it trusts it over https.
#[derive(Debug, clap::Args)]
struct Target {
    /// The running liveserve.
    #[arg(
        long,
        env = "LIVESERVE_URL",
        default_value = "http://localhost:8080/",
        value_parser = server_url
    )]
    url: ServerUrl,

    /// Over https, trust the certificate authority in this PEM file as well as liveserve's own
    /// (for a server started with --cert; mkcert's is "$(mkcert -CAROOT)/rootCA.pem").
    #[arg(long, env = "LIVESERVE_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
}

/// Reload the pages of a running liveserve: the ones showing PATHs, or every page.
#[derive(Debug, Parser)]
#[command(
    name = "liveserve reload",
    bin_name = "liveserve reload",
    version,
    max_term_width = 100
)]
struct ReloadCommand {
    #[command(flatten)]
    target: Target,

    /// URL paths that changed (`/css/site.css` swaps a stylesheet in place); none: every page
    /// reloads.
    #[arg(value_name = "PATH", value_parser = url_path)]
    paths: Vec<String>,
}

/// Wait until every open page of a running liveserve shows the latest change, then print its
/// status (JSON). Exit status: 0, or 1 when a page reported errors since it loaded or the --exec
/// command failed, 2 when the time ran out (no page open, or one that did not catch up).
#[derive(Debug, Parser)]
#[command(
    name = "liveserve wait",
    bin_name = "liveserve wait",
    version,
    max_term_width = 100
)]
struct WaitCommand {
    #[command(flatten)]
    target: Target,

    /// Seconds to wait at most.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    timeout: f64,
}

/// A running liveserve's address, as `--url` gives it (the server's `Local:` line).
#[derive(Debug, Clone)]
struct ServerUrl {
    text: String,
    https: bool,
    authority: Authority,
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// `--url`: an http or https URL with a host.
fn server_url(text: &str) -> Result<ServerUrl, String> {
    let example = || "not a URL such as http://localhost:8080/".to_owned();
    let uri: Uri = text.parse().map_err(|_| example())?;
    let authority = uri.authority().cloned().ok_or_else(example)?;
    if authority.as_str().contains('@') {
        return Err(
            "liveserve takes no user name or password: leave out the part up to @".to_owned(),
        );
    }
    // `http` takes `localhost:99999` for a host without a port; the port is the mistake.
    let after_host = authority.as_str().rsplit(']').next().unwrap_or_default();
    if authority.port_u16().is_none() && after_host.contains(':') {
        return Err(format!(
            "{authority}: the port must be a number from 1 to 65535"
        ));
    }
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        Some(scheme) => return Err(format!("{scheme} is not http or https")),
        None => return Err(example()),
    };
    Ok(ServerUrl {
        text: text.to_owned(),
        https,
        authority,
    })
}

/// A PATH: a URL path, as pages ask for it.
fn url_path(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        Ok(text.to_owned())
    } else {
        Err(format!("a URL path starts with /, e.g. /{text}"))
    }
}

/// Runs the command `args` names, if they name one (`liveserve reload ...`); `None` when they
/// are a server's arguments.
pub fn run(args: &[OsString]) -> Option<ExitCode> {
    let command = args.get(1)?.to_str()?;
    if !COMMANDS.contains(&command) {
        return None;
    }
    let shown = |error: clap::Error| {
        if matches!(
            error.kind(),
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
        ) {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        let help = format!("liveserve {command} --help");
        eprintln!("liveserve: error: {}", settings::one_line(&error, &help));
        ExitCode::from(2)
    };
    Some(if command == "wait" {
        match WaitCommand::try_parse_from(&args[1..]) {
            Ok(parsed) => wait(&parsed),
            Err(error) => shown(error),
        }
    } else {
        match ReloadCommand::try_parse_from(&args[1..]) {
            Ok(parsed) => report(reload(&parsed)),
            Err(error) => shown(error),
        }
    })
}

/// Prints what the server answered, or why it could not be asked.
fn report(outcome: Result<String, String>) -> ExitCode {
    match outcome {
        Ok(answer) => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("liveserve: error: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())
}

fn reload(command: &ReloadCommand) -> Result<String, String> {
    let body = serde_json::json!({ "paths": command.paths }).to_string();
    let target = &command.target;
    let asked = exchange(target, Method::POST, RELOAD, body);
    let (status, answer) = runtime()?
        .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, asked).await })
        .map_err(|_| format!("{} did not answer within 10 s", target.url))??;
    if status.is_success() {
        Ok(answer)
    } else {
        Err(refusal(&target.url, status, &answer))
    }
}

/// A failure status in one line. liveserve's own answers are one line that starts with their
/// status; another program on that port may send a whole page, which is not repeated.
fn refusal(url: &ServerUrl, status: http::StatusCode, body: &str) -> String {
    let first = body.lines().map(str::trim).find(|line| !line.is_empty());
    match first {
        Some(line) if line.starts_with(status.as_str()) => format!("{url} answered {line}"),
        Some(line) if !line.starts_with('<') => {
            let line: String = line.chars().take(200).collect();
            format!("{url} answered {status}: {line}")
        }
        _ => format!("{url} answered {status}; is it liveserve? (give its address with --url)"),
    }
}

fn wait(command: &WaitCommand) -> ExitCode {
    let Ok(timeout) = Duration::try_from_secs_f64(command.timeout) else {
        eprintln!(
            "liveserve: error: --timeout {}: a number of seconds",
            command.timeout
        );
        return ExitCode::from(2);
    };
    let outcome =
        runtime().and_then(|runtime| runtime.block_on(wait_until_shown(command, timeout)));
    match outcome {
        Ok((status, Waited::Shown)) => {
            println!("{status}");
            if status["build"] == "failed" {
                let open = status["pages"]
                    .as_array()
                    .is_some_and(|pages| !pages.is_empty());
                let shown = if open {
                    "; the pages show its output"
                } else {
                    ""
                };
                eprintln!("liveserve: the --exec command failed (see \"failure\"){shown}");
                return ExitCode::FAILURE;
            }
            let errors = status["pages"].as_array().is_some_and(|pages| {
                pages.iter().any(|page| {
                    page["errors"]
                        .as_array()
                        .is_some_and(|errors| !errors.is_empty())
                })
            });
            if errors {
                eprintln!("liveserve: a page reported errors since it loaded (see \"errors\")");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Ok((status, Waited::TimedOut(why))) => {
            println!("{status}");
            eprintln!("liveserve: gave up after {} s: {why}", command.timeout);
            ExitCode::from(2)
        }
        Err(reason) => {
            eprintln!("liveserve: error: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// How waiting ended.
enum Waited {
    Shown,
    /// Why the pages were not up to date.
    TimedOut(&'static str),
}

/// Asks for the status until every open page shows the latest change, or `timeout` passes.
async fn wait_until_shown(
    command: &WaitCommand,
    timeout: Duration,
) -> Result<(serde_json::Value, Waited), String> {
    let target = &command.target;
    let deadline = tokio::time::Instant::now() + timeout;
    // A save made just before this ran may not have reached the server's watcher yet.
    tokio::time::sleep(WAIT_POLL).await;
    loop {
        let asked = exchange(target, Method::GET, STATUS, String::new());
        let Ok(answer) = tokio::time::timeout(REQUEST_TIMEOUT, asked).await else {
            return Err(format!("{} did not answer within 10 s", target.url));
        };
        let (code, body) = answer?;
        if !code.is_success() {
            return Err(refusal(&target.url, code, &body));
        }
        let status: serde_json::Value = serde_json::from_str(&body)
            .map_err(|error| format!("an unreadable status: {error}"))?;
        let behind = behind(&status);
        match behind {
            None => return Ok((status, Waited::Shown)),
            Some(why) if tokio::time::Instant::now() >= deadline => {
                return Ok((status, Waited::TimedOut(why)));
            }
            Some(_) => tokio::time::sleep(WAIT_POLL).await,
        }
    }
}

/// Why the pages do not all show the latest change yet, if they do not.
fn behind(status: &serde_json::Value) -> Option<&'static str> {
    if status["pending"] == true {
        return Some("changes were still on their way");
    }
    // Nothing newer will come until the command is fixed: said at once (exit 1), page or not.
    if status["build"] == "failed" {
        return None;
    }
    let pages = status["pages"].as_array().map_or(&[][..], Vec::as_slice);
    if pages.is_empty() {
        return Some("no page is open");
    }
    let latest = &status["generation"];
    let caught_up = pages
        .iter()
        .all(|page| page["loading"] == false && page["generation"] == *latest);
    (!caught_up).then_some("a page did not show the latest change")
}

/// Sends one request to the liveserve `target` names (http or https); returns the status and
/// body.
async fn exchange(
    target: &Target,
    method: Method,
    path: &str,
    body: String,
) -> Result<(http::StatusCode, String), String> {
    let base = &target.url;
    let authority = &base.authority;
    let port = authority
        .port_u16()
        .unwrap_or(if base.https { 443 } else { 80 });
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let unreachable = |error: std::io::Error| {
        format!("no liveserve answers at {base} ({error}); start one, or give --url")
    };
    // What to trust is settled before anything is sent: a bad --ca is said as such.
    let tls = if base.https {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| format!("--url {base}: not a host name"))?;
        Some((name, trusting(target.ca.as_deref())?))
    } else {
        None
    };
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(unreachable)?;
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| error.to_string())?;
    let Some((name, (connector, trusted))) = tls else {
        return send(tcp, request).await;
    };
    let stream = connector.connect(name, tcp).await.map_err(|error| {
        if is_untrusted_certificate(&error) {
            format!(
                "{base}: its certificate is not signed by {trusted} ({error}); give the authority that signed it with --ca FILE (mkcert: --ca \"$(mkcert -CAROOT)/rootCA.pem\")"
            )
        } else {
            unreachable(error)
        }
    })?;
    send(stream, request).await
}

async fn send(
    stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    request: Request<Full<Bytes>>,
) -> Result<(http::StatusCode, String), String> {
    let failed = |error: hyper::Error| format!("the request failed: {error}");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failed)?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(failed)?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(failed)?;
    Ok((
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    ))
}

/// A TLS client that trusts liveserve's local authority (the one `--https` signs with), when
/// this machine has one, and the authority in `ca` (PEM); and what it trusts, in words. Both, so
/// that a `LIVESERVE_CA` set for one project still lets the commands reach an `--https` server.
fn trusting(ca: Option<&Path>) -> Result<(tokio_rustls::TlsConnector, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    let mut trusted = Vec::new();
    if let Some(file) = ca {
        let name = format!("--ca {}", file.display());
        add_authority(&mut roots, file, &name)?;
        trusted.push(name);
    }
    let own = tls::data_folder()
        .map(|folder| folder.join("ca.crt"))
        .filter(|file| file.is_file());
    match own {
        Some(file) => {
            let name = "liveserve's local authority".to_owned();
            match add_authority(&mut roots, &file, &name) {
                Ok(()) => trusted.push(name),
                // Beside a --ca the user gave, a broken one of ours is not in the way.
                Err(error) if trusted.is_empty() => return Err(error),
                Err(error) => tracing::debug!("{error}"),
            }
        }
        None if trusted.is_empty() => {
            return Err("no local certificate authority to trust (liveserve --https makes it); for a server started with --cert, give the authority that signed it with --ca FILE".to_owned());
        }
        None => {}
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((
        tokio_rustls::TlsConnector::from(Arc::new(config)),
        trusted.join(" or "),
    ))
}

/// Adds the certificates in the PEM `file` to `roots`; `name` says which file in an error.
fn add_authority(roots: &mut rustls::RootCertStore, file: &Path, name: &str) -> Result<(), String> {
    let before = roots.len();
    let certificates =
        CertificateDer::pem_file_iter(file).map_err(|error| format!("{name}: {error}"))?;
    for certificate in certificates.flatten() {
        roots
            .add(certificate)
            .map_err(|error| format!("{name}: {error}"))?;
    }
    if roots.len() == before {
        return Err(format!("{name}: no certificate in it (PEM)"));
    }
    Ok(())
}

/// Whether a handshake failed because the server's certificate is not trusted (rather than
/// because nobody answered).
fn is_untrusted_certificate(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|error| matches!(error, rustls::Error::InvalidCertificate(_)))
}
