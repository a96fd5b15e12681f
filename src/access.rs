//! Which names the server refuses to serve or list, whatever the file system says.
//!
//! One rule set for the server and the watcher, so that a file that cannot be served never shows
//! up in a change message either.

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

/// liveserve's own config file: settings for the server, not a page of the site (it may name
/// backends and hosts the project would rather not publish).
pub const CONFIG_FILE_NAME: &str = "liveserve.toml";

/// The rules for names, with the one relaxation the CLI offers (`--allow-hidden`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// Serve names starting with `.`; `.git` stays refused whatever this says.
    pub allow_hidden: bool,
}

impl Access {
    /// Whether a single path segment (a file or folder name) may be served.
    ///
    /// Names starting with `.` are private (`.env`, `.git`, `.ssh`...), except `.well-known`,
    /// which exists to be served. Compared case-insensitively where case could matter: on a
    /// case-insensitive file system `.GIT` is `.git`.
    pub fn allows(&self, name: &str) -> bool {
        if name.starts_with('.') && name != ".well-known" {
            let is_git = name
                .trim_end_matches(['.', ' '])
                .eq_ignore_ascii_case(".git");
            return self.allow_hidden && !is_git;
        }
        if SECRET_NAMES
            .iter()
            .chain([&CONFIG_FILE_NAME])
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_secret_names_are_refused() {
        let access = Access::default();
        for name in [
            ".env",
            ".git",
            ".htpasswd",
            "server.pem",
            "id.KEY",
            "a.Crt",
            "b.p12",
            "c.pfx",
            "id_rsa",
            "ID_ED25519",
            "liveserve.toml",
        ] {
            assert!(!access.allows(name), "{name} must be refused");
        }
        for name in [
            ".well-known",
            "index.html",
            "foo..bar",
            "keys.txt",
            "pem",
            "a.pem.txt",
        ] {
            assert!(access.allows(name), "{name} must be served");
        }
    }

    #[test]
    fn allow_hidden_never_opens_git() {
        let access = Access { allow_hidden: true };
        assert!(access.allows(".env"));
        assert!(access.allows(".htaccess"));
        for name in [".git", ".GIT", ".Git", ".git.", ".git "] {
            assert!(!access.allows(name), "{name:?}");
        }
        assert!(!access.allows("key.pem"), "secrets stay refused");
    }
}
