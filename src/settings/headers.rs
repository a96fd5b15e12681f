//! `--header 'Name: value'`: a header added to every response.

use std::str::FromStr;

use http::{HeaderName, HeaderValue};

/// A header every response gets, replacing one of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomHeader {
    pub name: HeaderName,
    pub value: HeaderValue,
}

/// Why a `--header` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--header {value:?}: {reason}; write it as 'Name: value', e.g. --header 'Cross-Origin-Opener-Policy: same-origin'"
)]
pub struct BadHeader {
    value: String,
    reason: &'static str,
}

impl FromStr for CustomHeader {
    type Err = BadHeader;

    fn from_str(value: &str) -> Result<Self, BadHeader> {
        let bad = |reason| BadHeader {
            value: value.to_owned(),
            reason,
        };
        let (name, header_value) = value.split_once(':').ok_or_else(|| bad("it has no ':'"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| bad("the name is not a valid header name"))?;
        let header_value = HeaderValue::from_str(header_value.trim())
            .map_err(|_| bad("the value has characters a header cannot carry"))?;
        Ok(CustomHeader {
            name,
            value: header_value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_bad_ones_are_refused() {
        let header: CustomHeader = "Cross-Origin-Embedder-Policy:  require-corp "
            .parse()
            .unwrap();
        assert_eq!(header.name, "cross-origin-embedder-policy");
        assert_eq!(header.value, "require-corp");
        for (value, reason) in [
            ("X-Thing", "no ':'"),
            ("Bad Name: x", "valid header name"),
            ("X-Thing: a\u{7}b", "cannot carry"),
        ] {
            let error = value.parse::<CustomHeader>().unwrap_err().to_string();
            assert!(error.contains(reason), "{value}: {error}");
        }
    }
}
