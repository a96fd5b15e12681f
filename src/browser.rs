//! `--open`: start the user's browser at the server's URL, without waiting for it.
//!
//! The opener runs in the background; a thread waits for it, so that it never lingers as a
//! zombie process, and says so in one line if it failed. Where no browser can be shown (a
//! Linux machine without a display, such as a container or an SSH session), nothing is started:
//! `xdg-open` would fall back to a text browser that takes over the terminal.

use std::process::{Command, Stdio};

/// Starts the browser at `url`; any failure is one warning line on stderr.
pub fn open(url: &str) {
    let Some(mut command) = opener_command(url) else {
        warn(
            url,
            "there is no display to show it on; set BROWSER to name one",
        );
        return;
    };
    let program = command.get_program().to_string_lossy().into_owned();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            warn(url, &format!("cannot run {program}: {error}"));
            return;
        }
    };
    let url = url.to_owned();
    let waiting = std::thread::Builder::new()
        .name("liveserve-open".into())
        .spawn(move || match child.wait() {
            Ok(status) if !status.success() => {
                warn(&url, &format!("{program} failed ({status})"));
            }
            Ok(_) => {}
            Err(error) => warn(&url, &format!("{program}: {error}")),
        });
    if let Err(error) = waiting {
        tracing::debug!("cannot wait for the browser opener: {error}");
    }
}

fn warn(url: &str, reason: &str) {
    eprintln!("liveserve: warning: could not open a browser: {reason}; open {url} yourself");
}

/// The command that opens `url` here: `$BROWSER` if set (its first entry, as in the
/// `BROWSER=firefox:chromium` convention), else the system's opener.
fn opener_command(url: &str) -> Option<Command> {
    let chosen = std::env::var("BROWSER").ok().and_then(|list| {
        list.split(':')
            .map(str::trim)
            .find(|entry| !entry.is_empty())
            .map(str::to_owned)
    });
    if let Some(browser) = chosen {
        let mut command = Command::new(browser);
        command.arg(url);
        return Some(command);
    }
    system_opener(url)
}

#[cfg(target_os = "macos")]
fn system_opener(url: &str) -> Option<Command> {
    let mut command = Command::new("open");
    command.arg(url);
    Some(command)
}

/// `explorer URL` exits with 1 even when it worked; the URL handler exits with 0.
#[cfg(windows)]
fn system_opener(url: &str) -> Option<Command> {
    let mut command = Command::new("rundll32");
    command.arg("url.dll,FileProtocolHandler").arg(url);
    Some(command)
}

#[cfg(not(any(target_os = "macos", windows)))]
fn system_opener(url: &str) -> Option<Command> {
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
    has_display.then(|| {
        let mut command = Command::new("xdg-open");
        command.arg(url);
        command
    })
}
