//! What liveserve prints when it starts: where it serves, and how to reach it.
//!
//! The first stdout line with `://` is always `Local: <url>`: scripts and tests read the
//! port from it, so it is printed even with `-q`, and without colour when stdout is not a terminal.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::http::AUTHORITY_PATH;
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

/// What the start-up lines offer other devices besides their URLs.
#[derive(Debug, Clone, Copy)]
pub struct ForDevices {
    /// Draw the first Network URL as a QR code, for a phone's camera.
    pub qr: bool,
    /// Say where a device gets the local certificate authority to trust (`--https`).
    pub authority: bool,
}

/// Prints the start-up lines. With `quiet`, only the `Local:` line.
pub fn print(
    root: &Path,
    addresses: &Addresses,
    scheme: &str,
    port: u16,
    quiet: bool,
    devices: ForDevices,
) {
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
    if quiet {
        let _ = out.flush();
        return;
    }
    let network = network_urls(addresses, scheme, port);
    for url in &network {
        let _ = writeln!(out, "Network: {}", paint("36", url));
    }
    if let Some(first) = addresses.network_ips().first()
        && devices.authority
    {
        // Plain HTTP on the port serves it: a phone that trusts nothing yet can still fetch it.
        let _ = writeln!(
            out,
            "on a phone, install and trust the local authority first: http://{}{AUTHORITY_PATH}",
            SocketAddr::new(*first, port)
        );
    }
    if devices.qr {
        match network.first() {
            Some(url) => {
                let _ = write!(out, "{}", qr_code(url, colour));
            }
            None => eprintln!(
                "liveserve: --qr: no Network URL to draw; serve to your network with --host 0.0.0.0"
            ),
        }
    }
    let _ = out.flush();
}

/// `url` as a QR code in text, two modules per character. In a terminal the code is drawn black
/// on white whatever the terminal's colours, because cameras read dark-on-light codes best.
fn qr_code(url: &str, colour: bool) -> String {
    let Ok(code) = qrcode::QrCode::new(url.as_bytes()) else {
        return String::new();
    };
    let drawn = code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    let mut text = String::new();
    for row in drawn.lines() {
        if colour {
            text.push_str(&format!("\x1b[30;107m{row}\x1b[0m\n"));
        } else {
            text.push_str(row);
            text.push('\n');
        }
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A phone's camera reads the drawn code back as the URL.
    #[test]
    fn the_qr_code_reads_back_as_the_url() {
        let url = "https://192.168.1.20:8080/";
        let drawn = qr_code(url, false);
        // Each character is two modules, one above the other; each module 4×4 pixels.
        let rows: Vec<Vec<char>> = drawn.lines().map(|row| row.chars().collect()).collect();
        let (width, height) = (rows[0].len() * 4, rows.len() * 8);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            let character = rows[y / 8][x / 4];
            let dark = match character {
                '█' => true,
                '▀' => y % 8 < 4,
                '▄' => y % 8 >= 4,
                _ => false,
            };
            if dark { 0 } else { 255 }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        assert_eq!(grids[0].decode().unwrap().1, url);
        assert!(rows[0].iter().all(|&c| c == ' '), "the quiet zone is light");
    }
}
