//! `--allow-host`: the host names the server answers besides localhost and IP addresses.

use std::fmt;
use std::str::FromStr;

/// One `--allow-host` rule: a name, or (written `.example.com`) a domain and every name below
/// it, the way Vite's `allowedHosts` reads a leading dot. Tunnels hand out a new name per run
/// under one domain (`.ngrok-free.app`, `.trycloudflare.com`), which a suffix rule covers once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    /// Exactly this name (lower case, without a trailing dot).
    Name(String),
    /// This domain and any name that ends with `.` and it.
    Domain(String),
}

/// Why an `--allow-host` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--allow-host {0:?} is not a host name; give one such as app.example.com, or .example.com for that domain and every name below it"
)]
pub struct BadHostRule(String);

impl HostRule {
    /// Whether `name` (lower case, without a port) is one this rule lets in.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            HostRule::Name(allowed) => name == allowed,
            HostRule::Domain(domain) => name
                .strip_suffix(domain.as_str())
                .is_some_and(|below| below.is_empty() || below.ends_with('.')),
        }
    }
}

impl FromStr for HostRule {
    type Err = BadHostRule;

    /// Takes what people paste: a URL (`https://abc.ngrok.io/`) or a `name:port` is reduced to
    /// its host, since the rule is about names and the port is the server's own. `*.example.com`
    /// reads as `.example.com`.
    fn from_str(value: &str) -> Result<Self, BadHostRule> {
        let bad = || BadHostRule(value.to_owned());
        let mut host = value.trim();
        if let Some((_scheme, rest)) = host.split_once("://") {
            host = rest;
        }
        host = host.split(['/', '?', '#']).next().unwrap_or_default();
        if let Some((name, port)) = host.rsplit_once(':') {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            host = name;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let (domain, name) = match host.strip_prefix("*.").or(host.strip_prefix('.')) {
            Some(domain) => (true, domain),
            None => (false, host.as_str()),
        };
        let well_formed = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !well_formed {
            return Err(bad());
        }
        Ok(if domain {
            HostRule::Domain(name.to_owned())
        } else {
            HostRule::Name(name.to_owned())
        })
    }
}

impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostRule::Name(name) => f.write_str(name),
            HostRule::Domain(domain) => write!(f, ".{domain}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(value: &str) -> HostRule {
        value.parse().unwrap()
    }

    #[test]
    fn names_urls_and_domains() {
        for value in [
            "abc.ngrok.io",
            "ABC.ngrok.io.",
            "https://abc.ngrok.io",
            "https://abc.ngrok.io/some/page?x#y",
            "abc.ngrok.io:443",
            "http://abc.ngrok.io:8080/",
        ] {
            assert_eq!(
                rule(value),
                HostRule::Name("abc.ngrok.io".into()),
                "{value}"
            );
        }
        for value in [
            ".ngrok-free.app",
            "*.ngrok-free.app",
            "https://*.ngrok-free.app/",
        ] {
            assert_eq!(
                rule(value),
                HostRule::Domain("ngrok-free.app".into()),
                "{value}"
            );
        }
        for value in [
            "",
            ".",
            "*",
            "a b",
            "a..b",
            "https://",
            "host:port",
            "user@host",
            "[::1]",
        ] {
            assert!(value.parse::<HostRule>().is_err(), "{value:?}");
        }
    }

    #[test]
    fn a_domain_rule_matches_the_domain_and_names_below_it_only() {
        let rule = rule(".example.com");
        assert!(rule.matches("example.com"));
        assert!(rule.matches("a.example.com"));
        assert!(rule.matches("a.b.example.com"));
        assert!(!rule.matches("badexample.com"));
        assert!(!rule.matches("example.com.evil"));
        let name = HostRule::Name("example.com".into());
        assert!(name.matches("example.com"));
        assert!(!name.matches("a.example.com"));
    }
}
