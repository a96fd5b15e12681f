//! Which names the server refuses to serve or list, whatever the file system says.
//!
//! One list for the server and (later) the watcher, so that a file that cannot be served can never
//! show up in a change message either.

/// File name endings of private keys and certificates, compared case-insensitively.
const SECRET_EXTENSIONS: &[&str] = &["pem", "key", "crt", "p12", "pfx"];

/// SSH private keys have no extension; their default names are well known.
const SECRET_NAMES: &[&str] = &[
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_ecdsa_sk",
    "id_ed25519_sk",
];

/// Whether a single path segment (a file or folder name) may be served.
///
/// Names starting with `.` are private (`.env`, `.git`, `.ssh`...), except `.well-known`, which
/// exists to be served.
pub fn is_servable_name(name: &str) -> bool {
    if name.starts_with('.') {
        return name == ".well-known";
    }
    if SECRET_NAMES
        .iter()
        .any(|secret| secret.eq_ignore_ascii_case(name))
    {
        return false;
    }
    let extension = name.rsplit_once('.').map(|(_, extension)| extension);
    !extension.is_some_and(|extension| {
        SECRET_EXTENSIONS
            .iter()
            .any(|secret| secret.eq_ignore_ascii_case(extension))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_secret_names_are_refused() {
        for name in [
            ".env",
            ".git",
            ".htpasswd",
            "server.pem",
            "id.KEY",
            "a.Crt",
            "b.p12",
            "c.pfx",
        ] {
            assert!(!is_servable_name(name), "{name} must be refused");
        }
        for name in [
            ".well-known",
            "index.html",
            "foo..bar",
            "keys.txt",
            "pem",
            "a.pem.txt",
        ] {
            assert!(is_servable_name(name), "{name} must be served");
        }
    }
}
