//! What liveserve prints when it starts: where it serves, and how to reach it.
//!
//! The first stdout line with `http://` is always `Local: <url>`: scripts and tests read the
//! port from it, so it is printed even with `-q`, and without colour when stdout is not a terminal.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::listen::Addresses;

/// The URL to open on this machine: `localhost` when 127.0.0.1, ::1 or every address is bound
/// (`localhost` resolves to those), else the bound address itself.
pub fn local_url(addresses: &Addresses, port: u16) -> String {
    let local = addresses.required.iter().any(|ip| {
        ip.is_unspecified()
            || *ip == IpAddr::from([127, 0, 0, 1])
            || *ip == IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
    });
    match addresses.required.first() {
        Some(&ip) if !local => format!("http://{}/", SocketAddr::new(ip, port)),
        _ => format!("http://localhost:{port}/"),
    }
}

/// URLs other devices can use: one per interface address when bound to every address, else the
/// bound non-loopback addresses themselves.
pub fn network_urls(addresses: &Addresses, port: u16) -> Vec<String> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for &ip in &addresses.required {
        if ip.is_unspecified() {
            let interfaces = if_addrs::get_if_addrs().unwrap_or_default();
            ips.extend(
                interfaces
                    .iter()
                    .map(|interface| interface.ip())
                    .filter(|found| !found.is_loopback() && found.is_ipv4() == ip.is_ipv4()),
            );
        } else if !ip.is_loopback() {
            ips.push(ip);
        }
    }
    let mut seen = std::collections::HashSet::new();
    ips.retain(|ip| seen.insert(*ip));
    ips.into_iter()
        .map(|ip| format!("http://{}/", SocketAddr::new(ip, port)))
        .collect()
}

/// Prints the start-up lines. With `quiet`, only the `Local:` line.
pub fn print(root: &Path, addresses: &Addresses, port: u16, quiet: bool) {
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
    let _ = writeln!(out, "Local: {}", paint("36", &local_url(addresses, port)));
    if !quiet {
        for url in network_urls(addresses, port) {
            let _ = writeln!(out, "Network: {}", paint("36", &url));
        }
    }
    let _ = out.flush();
}

/// One more start-up line on stdout. Whoever reads the `Local:` line may close stdout after it
/// (`liveserve | head -1`): the server goes on without complaint.
pub fn line(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stdout(), "{text}");
}
