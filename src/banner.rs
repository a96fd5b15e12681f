//! What liveserve prints when it starts: where it serves, and how to reach it.
//!
//! The first stdout line with `://` is always `Local: <url>`: scripts and tests read the
//! port from it, so it is printed even with `-q`, and without colour when stdout is not a terminal.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::listen::Addresses;

/// The URL to open on this machine: `localhost` when 127.0.0.1, ::1 or every address is bound
/// (`localhost` resolves to those), else the bound address itself.
pub fn local_url(addresses: &Addresses, scheme: &str, port: u16) -> String {
    let local = addresses.required.iter().any(|ip| {
        ip.is_unspecified()
            || *ip == IpAddr::from([127, 0, 0, 1])
            || *ip == IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
    });
    match addresses.required.first() {
        Some(&ip) if !local => format!("{scheme}://{}/", SocketAddr::new(ip, port)),
        _ => format!("{scheme}://localhost:{port}/"),
    }
}

/// URLs other devices can use: one per address served to the network.
pub fn network_urls(addresses: &Addresses, scheme: &str, port: u16) -> Vec<String> {
    addresses
        .network_ips()
        .into_iter()
        .map(|ip| format!("{scheme}://{}/", SocketAddr::new(ip, port)))
        .collect()
}

/// Prints the start-up lines. With `quiet`, only the `Local:` line.
pub fn print(root: &Path, addresses: &Addresses, scheme: &str, port: u16, quiet: bool) {
    let colour = std::io::stdout().is_terminal();
    let paint = |code: &str, text: &str| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let mut out = std::io::stdout().lock();
    if !quiet {
        let _ = writeln!(
            out,
            "{} {}  serving {}",
            paint("1;32", "liveserve"),
            env!("CARGO_PKG_VERSION"),
            root.display()
        );
    }
    let _ = writeln!(
        out,
        "Local: {}",
        paint("36", &local_url(addresses, scheme, port))
    );
    if !quiet {
        for url in network_urls(addresses, scheme, port) {
            let _ = writeln!(out, "Network: {}", paint("36", &url));
        }
    }
    let _ = out.flush();
}

/// Says once, when the local certificate authority was just made, where it is and how to trust
/// it on this machine.
pub fn new_authority(certificate: &Path) {
    let path = certificate.display();
    let command = if cfg!(target_os = "macos") {
        format!(
            "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {path}"
        )
    } else if cfg!(windows) {
        format!("certutil -addstore -user Root {path}")
    } else {
        format!(
            "certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n liveserve -i {path} (Chromium, Firefox; Debian: apt-get install libnss3-tools)"
        )
    };
    line(format_args!(
        "made a local certificate authority for --https: {path}\ntrust it once with: {command}"
    ));
}

/// One more start-up line on stdout. Whoever reads the `Local:` line may close stdout after it
/// (`liveserve | head -1`): the server goes on without complaint.
pub fn line(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stdout(), "{text}");
}
