//! Choosing the addresses and the port to listen on, and binding them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};

use crate::error::StartupError;

/// The port liveserve tries first when none is given.
pub const DEFAULT_PORT: u16 = 8080;

/// How many ports, the first included, are tried before giving up.
const FALLBACK_TRIES: u16 = 50;

/// The addresses to listen on, all on one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    /// Each must be bound, or starting fails.
    pub required: Vec<IpAddr>,
    /// Bound when the machine has them: `::1` is missing where IPv6 is turned off, and that is
    /// no reason to refuse to start.
    pub optional: Vec<IpAddr>,
}

impl Addresses {
    /// The addresses other devices reach this server at: every interface's address when bound
    /// to all of them, else the bound non-loopback addresses themselves. The likeliest to work
    /// from a phone come first: IPv4 on a real interface, then IPv6, then container bridges and
    /// link-local addresses.
    pub fn network_ips(&self) -> Vec<IpAddr> {
        let interfaces: Vec<(String, IpAddr)> = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .map(|interface| {
                let ip = interface.ip();
                (interface.name, ip)
            })
            .collect();
        let name_of = |ip: IpAddr| {
            interfaces
                .iter()
                .find(|(_, found)| *found == ip)
                .map_or("", |(name, _)| name.as_str())
        };
        let mut ips: Vec<(&str, IpAddr)> = Vec::new();
        for &ip in &self.required {
            if ip.is_unspecified() {
                ips.extend(
                    interfaces
                        .iter()
                        .filter(|(_, found)| {
                            !found.is_loopback() && found.is_ipv4() == ip.is_ipv4()
                        })
                        .map(|(name, found)| (name.as_str(), *found)),
                );
            } else if !ip.is_loopback() {
                ips.push((name_of(ip), ip));
            }
        }
        let mut seen = std::collections::HashSet::new();
        ips.retain(|(_, ip)| seen.insert(*ip));
        ips.sort_by_key(|&(name, ip)| reachability(name, ip));
        ips.into_iter().map(|(_, ip)| ip).collect()
    }

    /// The addresses `--host` names: `localhost` means both loopbacks, an IP literal (bracketed
    /// or not) itself, and any other name what it resolves to.
    pub fn from_host(host: &str) -> Result<Self, StartupError> {
        let bad = |reason: &str| StartupError::BadHost {
            host: host.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = host.trim();
        if trimmed.eq_ignore_ascii_case("localhost") {
            return Ok(Addresses {
                required: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                optional: vec![IpAddr::V6(Ipv6Addr::LOCALHOST)],
            });
        }
        let literal = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or(trimmed);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(Addresses {
                required: vec![ip],
                optional: Vec::new(),
            });
        }
        let is_name = !trimmed.is_empty()
            && trimmed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !is_name {
            return Err(bad("not a host name or IP address"));
        }
        let resolved = (trimmed, 0)
            .to_socket_addrs()
            .map_err(|_| bad("a name that does not resolve"))?;
        let mut required: Vec<IpAddr> = Vec::new();
        for addr in resolved {
            if !required.contains(&addr.ip()) {
                required.push(addr.ip());
            }
        }
        if required.is_empty() {
            return Err(bad("a name that resolves to no address"));
        }
        Ok(Addresses {
            required,
            optional: Vec::new(),
        })
    }

    /// Whether other machines can reach the server (anything but loopback).
    pub fn is_exposed(&self) -> bool {
        self.required.iter().any(|ip| !ip.is_loopback())
    }
}

/// How likely another device is to reach `ip` on the interface called `name`, best first: a
/// LAN's IPv4 address, then IPv6, then the bridges containers and virtual machines sit on
/// (reachable from this machine only), then link-local addresses (which a URL cannot even
/// name without the interface).
fn reachability(name: &str, ip: IpAddr) -> (u8, bool) {
    const VIRTUAL_PREFIXES: [&str; 9] = [
        "docker", "br-", "veth", "virbr", "cni", "podman", "vboxnet", "vmnet", "flannel",
    ];
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    };
    let bridge = VIRTUAL_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix));
    let rank = if link_local {
        2
    } else if bridge {
        1
    } else {
        0
    };
    (rank, ip.is_ipv6())
}

/// Which port to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortChoice {
    /// The user asked for this port: if it is busy, that is an error, never a silent move.
    Exactly(u16),
    /// The first free port from this one on (the default, 8080, may well be taken).
    FirstFreeFrom(u16),
}

/// Listeners on every address, all on the same port.
#[derive(Debug)]
pub struct Bound {
    pub listeners: Vec<TcpListener>,
    pub port: u16,
}

/// Binds every address on the chosen port, moving on to the next port while one is busy when the
/// choice allows it.
pub fn bind(addresses: &Addresses, choice: PortChoice) -> Result<Bound, StartupError> {
    match choice {
        PortChoice::Exactly(port) => bind_port(addresses, port).map_err(|error| match error {
            BindError::Busy => StartupError::PortBusy(port),
            BindError::Other(addr, error) => listen_error(addr, port, error),
        }),
        PortChoice::FirstFreeFrom(first) => {
            let last = first.saturating_add(FALLBACK_TRIES - 1);
            for port in first..=last {
                match bind_port(addresses, port) {
                    Ok(bound) => return Ok(bound),
                    Err(BindError::Busy) => continue,
                    Err(BindError::Other(addr, error)) => {
                        return Err(listen_error(addr, port, error));
                    }
                }
            }
            Err(StartupError::NoFreePort { first, last })
        }
    }
}

fn listen_error(addr: IpAddr, port: u16, error: io::Error) -> StartupError {
    if error.kind() == io::ErrorKind::AddrNotAvailable {
        StartupError::HostUnavailable(addr)
    } else {
        StartupError::Listen { addr, port, error }
    }
}

enum BindError {
    Busy,
    Other(IpAddr, io::Error),
}

/// Binds all addresses on `port`. Port 0 lets the first address pick a free port, which the
/// others then share; if one of them has it taken, another free port is tried.
fn bind_port(addresses: &Addresses, port: u16) -> Result<Bound, BindError> {
    const EPHEMERAL_TRIES: usize = 10;
    let tries = if port == 0 { EPHEMERAL_TRIES } else { 1 };
    for _ in 0..tries {
        match bind_all(addresses, port) {
            Err(BindError::Busy) if port == 0 => continue,
            result => return result,
        }
    }
    Err(BindError::Busy)
}

fn bind_all(addresses: &Addresses, mut port: u16) -> Result<Bound, BindError> {
    let mut listeners = Vec::new();
    for &ip in &addresses.required {
        let listener = bind_one(ip, port)?;
        port = local_port(&listener, ip)?;
        listeners.push(listener);
    }
    for &ip in &addresses.optional {
        match bind_one(ip, port) {
            Ok(listener) => listeners.push(listener),
            // Any failure but a busy port means the machine lacks the address: skip it.
            Err(BindError::Other(..)) => {}
            Err(BindError::Busy) => return Err(BindError::Busy),
        }
    }
    Ok(Bound { listeners, port })
}

fn bind_one(ip: IpAddr, port: u16) -> Result<TcpListener, BindError> {
    TcpListener::bind(SocketAddr::new(ip, port)).map_err(|error| {
        if error.kind() == io::ErrorKind::AddrInUse {
            BindError::Busy
        } else {
            BindError::Other(ip, error)
        }
    })
}

fn local_port(listener: &TcpListener, ip: IpAddr) -> Result<u16, BindError> {
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|error| BindError::Other(ip, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        let localhost = Addresses::from_host("localhost").unwrap();
        assert_eq!(localhost.required, [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        assert!(!localhost.is_exposed());
        assert!(Addresses::from_host("0.0.0.0").unwrap().is_exposed());
        assert_eq!(
            Addresses::from_host("[::1]").unwrap().required,
            [IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        assert!(Addresses::from_host("not a host").is_err());
        assert!(Addresses::from_host("").is_err());
    }

    #[test]
    fn lan_ipv4_comes_first_and_bridges_and_link_local_last() {
        let mut found: Vec<(&str, IpAddr)> = vec![
            ("eth0", "fe80::1".parse().unwrap()),
            ("docker0", "172.17.0.1".parse().unwrap()),
            ("eth0", "169.254.3.4".parse().unwrap()),
            ("wlan0", "2001:db8::5".parse().unwrap()),
            ("br-1a2b", "172.18.0.1".parse().unwrap()),
            ("wlan0", "192.168.1.20".parse().unwrap()),
        ];
        found.sort_by_key(|&(name, ip)| reachability(name, ip));
        let order: Vec<String> = found.iter().map(|(_, ip)| ip.to_string()).collect();
        assert_eq!(
            order,
            [
                "192.168.1.20",
                "2001:db8::5",
                "172.17.0.1",
                "172.18.0.1",
                "169.254.3.4",
                "fe80::1"
            ]
        );
    }
}
