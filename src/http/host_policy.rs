//! Which `Host` and WebSocket `Origin` values the server answers, against DNS rebinding and
//! cross-site WebSocket hijacking.
//!
//! A hostile web page can point a DNS name it controls at 127.0.0.1 and then read the dev server
//! as its own origin. That only works through a host *name*, so IP literals, `localhost` and
//! `*.localhost` (which resolve locally by definition) are always accepted, and any other name
//! only when the user allows it with `--allow-host`. The check runs whatever the bind address.

use std::net::{Ipv4Addr, Ipv6Addr};

use http::header::{HOST, ORIGIN};
use http::{HeaderMap, Request};

use crate::settings::HostRule;

#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// The `--allow-host` rules.
    allowed: Vec<HostRule>,
}

impl HostPolicy {
    pub fn new(allowed: &[HostRule]) -> Self {
        HostPolicy {
            allowed: allowed.to_vec(),
        }
    }

    /// Refuses a request whose `Host` (or absolute-form target) is missing, malformed (400) or a
    /// name that is not allowed (403).
    pub fn check<B>(&self, request: &Request<B>) -> Result<(), HostRefused> {
        let mut hosts = request.headers().get_all(HOST).iter();
        let (Some(host), None) = (
            hosts.next().and_then(|value| value.to_str().ok()),
            hosts.next(),
        ) else {
            return Err(HostRefused::Malformed(
                "the request needs exactly one valid Host header",
            ));
        };
        let targets = std::iter::once(host).chain(request.uri().authority().map(|a| a.as_str()));
        for authority in targets {
            let Some((name, _port)) = split_authority(authority) else {
                return Err(HostRefused::Malformed("the Host header is malformed"));
            };
            if !self.allows_name(name) {
                return Err(HostRefused::NotAllowed(
                    name.trim_end_matches('.').to_ascii_lowercase(),
                ));
            }
        }
        Ok(())
    }

    /// Whether a WebSocket handshake may go on: with no `Origin` (a command-line tool) yes;
    /// otherwise its host[:port] must be the request's `Host`, or an `--allow-host` name. The
    /// scheme is not compared, so a page behind an HTTPS reverse proxy still connects.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let mut origins = headers.get_all(ORIGIN).iter();
        let Some(origin) = origins.next() else {
            return true;
        };
        if origins.next().is_some() {
            return false; // a browser sends one; several can only be an attempt to confuse
        }
        let Some(origin) = origin
            .to_str()
            .ok()
            .and_then(|origin| origin.split_once("://"))
        else {
            return false; // includes `Origin: null`
        };
        let origin_authority = origin.1.trim_end_matches('/');
        let host = headers
            .get(HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !host.is_empty() && origin_authority.eq_ignore_ascii_case(host) {
            return true;
        }
        split_authority(origin_authority).is_some_and(|(name, _)| self.allowed_by_rule(name))
    }

    fn allows_name(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        let subdomain_of_localhost = name
            .strip_suffix(".localhost")
            .is_some_and(|label| !label.is_empty() && !label.ends_with('.'));
        is_ip_literal(&name)
            || name == "localhost"
            || subdomain_of_localhost
            || self.allowed_by_rule(&name)
    }

    fn allowed_by_rule(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        self.allowed.iter().any(|rule| rule.matches(&name))
    }
}

/// Whether the request's `Host` names this machine: `localhost`, a name below it, or a loopback
/// address.
pub fn names_this_machine<B>(request: &Request<B>) -> bool {
    let Some((name, _)) = request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(split_authority)
    else {
        return false;
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let ip = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name.ends_with(".localhost")
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HostRefused {
    /// No usable `Host` (400), and why.
    Malformed(&'static str),
    /// A host name no rule allows (403), lower case.
    NotAllowed(String),
}

fn is_ip_literal(name: &str) -> bool {
    name.parse::<Ipv4Addr>().is_ok()
        || name
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .is_some_and(|inner| inner.parse::<Ipv6Addr>().is_ok())
}

/// Splits `host[:port]` into the host (IPv6 literals keep their brackets) and the port.
/// `None` for anything that is not a plain authority: user info, paths, bad ports, bad bytes.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (name, rest) = authority.split_at(close + 1);
        match rest {
            "" => (name, None),
            rest => (name, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(port.parse().ok()?)
        }
        Some(_) => return None,
    };
    let valid_name = !name.is_empty()
        && (is_ip_literal(name)
            || name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'));
    valid_name.then_some((name, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: &str) -> Request<()> {
        Request::builder()
            .uri("/")
            .header(HOST, host)
            .body(())
            .unwrap()
    }

    fn status(policy: &HostPolicy, host: &str) -> u16 {
        match policy.check(&request(host)) {
            Ok(()) => 200,
            Err(HostRefused::Malformed(_)) => 400,
            Err(HostRefused::NotAllowed(_)) => 403,
        }
    }

    fn policy(rules: &[&str]) -> HostPolicy {
        let rules: Vec<HostRule> = rules.iter().map(|rule| rule.parse().unwrap()).collect();
        HostPolicy::new(&rules)
    }

    #[test]
    fn hosts() {
        let policy = policy(&["tunnel.example", ".tunnels.example"]);
        for allowed in [
            "localhost",
            "localhost:1",
            "LOCALHOST:8080",
            "a.localhost",
            "a.b.localhost:3000",
            "127.0.0.1",
            "127.0.0.1:8080",
            "192.168.1.20:8080",
            "[::1]",
            "[::1]:8080",
            "tunnel.example",
            "TUNNEL.example:443",
            "localhost.",
            "tunnels.example",
            "abc.tunnels.example:443",
        ] {
            assert_eq!(status(&policy, allowed), 200, "{allowed}");
        }
        for refused in [
            ".localhost",
            "a..localhost",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "tunnel.example.evil",
            "a.tunnel.example",
            "eviltunnels.example",
        ] {
            assert_eq!(status(&policy, refused), 403, "{refused}");
        }
        for malformed in [
            "",
            "a b",
            "user@localhost",
            "localhost:port",
            "localhost:99999",
            "[::1",
            "::1",
            "localhost/x",
            "[::1]x",
        ] {
            assert_eq!(status(&policy, malformed), 400, "{malformed:?}");
        }
    }

    #[test]
    fn origins() {
        let policy = policy(&["tunnel.example", ".tunnels.example"]);
        let headers = |origin: Option<&str>, host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(HOST, host.parse().unwrap());
            if let Some(origin) = origin {
                headers.insert(ORIGIN, origin.parse().unwrap());
            }
            headers
        };
        assert!(policy.origin_allowed(&headers(None, "localhost:8080")));
        assert!(policy.origin_allowed(&headers(Some("http://localhost:8080"), "localhost:8080")));
        assert!(policy.origin_allowed(&headers(Some("https://localhost:8080"), "localhost:8080")));
        assert!(policy.origin_allowed(&headers(Some("https://tunnel.example"), "localhost:8080")));
        assert!(policy.origin_allowed(&headers(
            Some("https://a.tunnels.example"),
            "localhost:8080"
        )));
        assert!(!policy.origin_allowed(&headers(Some("http://localhost:3000"), "localhost:8080")));
        assert!(!policy.origin_allowed(&headers(Some("http://evil.example"), "localhost:8080")));
        assert!(!policy.origin_allowed(&headers(Some("null"), "localhost:8080")));
    }
}
