//! The built `liveserve` binary: start-up output, exit codes, one-line errors, signals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use crate::support::{TIMEOUT, site};

pub(crate) fn liveserve() -> Command {
    liveserve_under(&[])
}

/// The binary run by `wrapper` (such as `prlimit --nofile=64:64`), or directly when it is empty.
pub(crate) fn liveserve_under(wrapper: &[&str]) -> Command {
    let binary = env!("CARGO_BIN_EXE_liveserve");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    // The user's environment must not change what these tests see.
    for (name, _) in std::env::vars() {
        if name.starts_with("LIVESERVE_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs a command that is expected to exit at once, bounded by the test timeout.
pub(crate) fn run_to_exit(mut command: Command) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    finished
        .recv_timeout(TIMEOUT)
        .expect("liveserve exited in time")
        .unwrap()
}

/// Asserts exit code `code` with exactly one line on stderr that contains `needle`.
pub(crate) fn assert_one_line_error(output: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line, no backtrace: {stderr}"
    );
    assert!(
        stderr.contains(needle),
        "{stderr:?} should mention {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_flag_that_needs_another_names_it() {
    let mut command = liveserve();
    command.args(["--port", "0", "--exec-restart"]);
    assert_one_line_error(
        &run_to_exit(command),
        2,
        "required arguments were not provided: --exec <CMD>",
    );
}

#[test]
fn a_missing_root_is_a_usage_error() {
    let mut command = liveserve();
    command.arg("/no/such/folder/anywhere");
    assert_one_line_error(&run_to_exit(command), 2, "does not exist");
}

#[test]
fn a_file_as_root_is_a_usage_error() {
    let root = site(&[("page.html", b"x")]);
    let mut command = liveserve();
    command.arg(root.path().join("page.html"));
    assert_one_line_error(&run_to_exit(command), 2, "is a file, not a folder");
}

#[test]
fn a_bad_host_is_a_usage_error() {
    let root = site(&[]);
    let mut command = liveserve();
    command.arg(root.path()).args(["--host", "not a host!"]);
    assert_one_line_error(&run_to_exit(command), 2, "--host");
}

#[test]
fn a_host_address_this_machine_lacks_is_a_usage_error() {
    let root = site(&[]);
    let mut command = liveserve();
    // TEST-NET-1: documentation-only, never assigned to a machine, so binding fails at once.
    command
        .arg(root.path())
        .args(["--host", "192.0.2.1", "--port", "0"]);
    assert_one_line_error(&run_to_exit(command), 2, "not an address of this machine");
}

#[test]
fn an_explicit_busy_port_is_an_error_not_a_move() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let root = site(&[]);

    let mut command = liveserve();
    command
        .arg(root.path())
        .args(["--host", "127.0.0.1", "--port", &port]);
    let output = run_to_exit(command);
    assert_one_line_error(&output, 1, &format!("port {port} is already in use"));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--port"),
        "says what to do"
    );

    let mut command = liveserve();
    command
        .arg(root.path())
        .args(["--host", "127.0.0.1"])
        .env("LIVESERVE_PORT", &port);
    assert_one_line_error(&run_to_exit(command), 1, "already in use");
}

/// A running `liveserve` whose stdout lines arrive on a channel; killed when dropped.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) lines: mpsc::Receiver<String>,
}

impl Running {
    pub(crate) fn start(mut command: Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    pub(crate) fn next_line(&self) -> String {
        self.lines
            .recv_timeout(TIMEOUT)
            .expect("liveserve printed a line in time")
    }

    /// Lines until the first one with a URL (`Local:`), which is returned last.
    pub(crate) fn lines_until_url(&self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.next_line();
            let done = line.contains("://");
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Sends SIGTERM; returns the exit status and the stdout lines not read yet.
    pub(crate) fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let mut child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || done.send(child.wait()));
        let status = finished
            .recv_timeout(TIMEOUT)
            .expect("liveserve exited in time")
            .unwrap();
        // The process has exited, so stdout ends and the reader thread hangs up.
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(TIMEOUT) {
            rest.push(line);
        }
        (status, rest)
    }
}

impl Drop for Running {
    /// Stopped as a user does (SIGTERM), so that liveserve stops what `--exec` started even
    /// when a test fails; killed if it has not exited after [`TIMEOUT`].
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: kill(2) on our own child, not reaped yet (try_wait above found it running).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) {
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// The port in a `Local: http://localhost:PORT/` (or `https://`) line.
pub(crate) fn port_of(line: &str) -> u16 {
    let rest = line
        .strip_prefix("Local: http://localhost:")
        .or_else(|| line.strip_prefix("Local: https://localhost:"))
        .expect(line);
    rest.trim_end_matches('/').parse().expect(line)
}

#[test]
fn prints_the_local_url_serves_and_exits_cleanly_on_sigterm() {
    let root = site(&[("index.html", b"<body>hello</body>")]);
    let mut command = liveserve();
    command.arg(root.path()).args(["--port", "0"]);
    let running = Running::start(command);
    let lines = running.lines_until_url();
    let local = lines.last().unwrap();
    assert!(lines[0].contains("liveserve") && lines[0].contains(env!("CARGO_PKG_VERSION")));
    assert!(
        !local.contains('\x1b'),
        "no colour when stdout is not a terminal: {local:?}"
    );
    let port = port_of(local);
    assert_ne!(port, 0);

    let page = http_get(port, "/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("hello<script src=\"/__liveserve/client.js\""),
        "{page}"
    );

    let (status, _) = running.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean exit");
}

/// The local addresses listening on `port`, from the kernel's socket tables (what `ss -ltn` reads).
fn listening_addresses(port: u16) -> Vec<String> {
    let port = format!("{port:04X}");
    let mut addresses = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (fields[1], fields[3]);
            if state == "0A" && local.ends_with(&format!(":{port}")) {
                addresses.push(local.split(':').next().unwrap().to_owned());
            }
        }
    }
    addresses
}

#[test]
fn by_default_only_loopback_listens() {
    let root = site(&[]);
    let mut command = liveserve();
    command.arg(root.path()).args(["--port", "0"]);
    let running = Running::start(command);
    let port = port_of(running.lines_until_url().last().unwrap());
    let addresses = listening_addresses(port);
    // 127.0.0.1 and ::1 as the kernel writes them.
    let loopback = ["0100007F", "00000000000000000000000001000000"];
    assert!(!addresses.is_empty());
    assert!(
        addresses
            .iter()
            .all(|address| loopback.contains(&address.as_str())),
        "{addresses:?}"
    );
    assert_eq!(running.terminate().0.code(), Some(0));
}

#[test]
fn quiet_prints_only_the_local_line() {
    let root = site(&[]);
    let mut command = liveserve();
    command.arg(root.path()).args(["--port", "0", "-q"]);
    let running = Running::start(command);
    let first = running.next_line();
    port_of(&first);
    let (status, rest) = running.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(rest.is_empty(), "nothing but the Local: line: {rest:?}");
}

#[test]
fn exposing_the_server_warns_and_lists_network_urls() {
    let root = site(&[]);
    let mut command = liveserve();
    command
        .arg(root.path())
        .args(["--port", "0", "--host", "0.0.0.0"]);
    let mut running = Running::start(command);
    let local = running.lines_until_url().pop().unwrap();
    let port = port_of(&local);
    assert!(http_get(port, "/").starts_with("HTTP/1.1 200"));
    let stderr = running.child.stderr.take().unwrap();
    let mut warning = String::new();
    BufReader::new(stderr).read_line(&mut warning).unwrap();
    assert!(
        warning.contains("warning") && warning.contains("network"),
        "{warning}"
    );
    assert_eq!(running.terminate().0.code(), Some(0));
}

#[test]
fn help_documents_every_flag_and_its_environment_twin() {
    let mut command = liveserve();
    command.arg("--help");
    let output = run_to_exit(command);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--ignore",
        "--no-gitignore",
        "--wait",
        "--full-reload",
        "--allow-host",
        "--allow-hidden",
        "--follow-symlinks",
        "--cors",
        "--port",
        "--host",
        "--open",
        "--no-reload",
        "--quiet",
        "--verbose",
    ] {
        assert!(help.contains(flag), "{flag} in --help");
    }
    for env in [
        "LIVESERVE_ROOT",
        "LIVESERVE_PORT",
        "LIVESERVE_HOST",
        "LIVESERVE_OPEN",
        "LIVESERVE_NO_RELOAD",
        "LIVESERVE_QUIET",
        "LIVESERVE_VERBOSE",
        "LIVESERVE_IGNORE",
        "LIVESERVE_NO_GITIGNORE",
        "LIVESERVE_WAIT",
        "LIVESERVE_FULL_RELOAD",
        "LIVESERVE_ALLOW_HOST",
        "LIVESERVE_ALLOW_HIDDEN",
        "LIVESERVE_FOLLOW_SYMLINKS",
        "LIVESERVE_CORS",
    ] {
        assert!(help.contains(env), "{env} in --help");
    }
}

/// A blocking GET over a fresh connection; returns the whole response as text.
pub(crate) fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

// The reverse proxy's settings --------------------------------------------------------------

#[test]
fn a_proxy_that_is_not_http_is_a_usage_error() {
    let root = site(&[]);
    let mut command = liveserve();
    command.arg(root.path()).args(["--proxy", "ftp://x"]);
    assert_one_line_error(&run_to_exit(command), 2, "--proxy");
}

#[test]
fn two_proxies_on_one_prefix_are_a_usage_error() {
    let root = site(&[]);
    let mut command = liveserve();
    // `/a/` is `/a` once its trailing slash is gone: the same prefix.
    command.arg(root.path()).args([
        "--proxy",
        "/a=http://127.0.0.1:1",
        "--proxy",
        "/a/=http://127.0.0.1:2",
    ]);
    assert_one_line_error(&run_to_exit(command), 2, "two --proxy routes");
}

#[test]
fn a_watch_folder_that_does_not_exist_is_a_usage_error() {
    let root = site(&[]);
    let mut command = liveserve();
    command
        .arg(root.path())
        .args(["--watch", "/no/such/folder/anywhere"]);
    assert_one_line_error(
        &run_to_exit(command),
        2,
        "--watch /no/such/folder/anywhere: it does not exist",
    );
}

/// Stdout lines up to and including the first that starts with `watching`, which comes after
/// every proxy line.
fn lines_until_watching(running: &Running) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = running.next_line();
        let done = line.starts_with("watching");
        lines.push(line);
        if done {
            return lines;
        }
    }
}

#[test]
fn liveserve_proxy_takes_a_comma_separated_list_and_prints_each_route() {
    let root = site(&[("index.html", b"<body>hello</body>")]);
    let mut command = liveserve();
    command.arg(root.path()).args(["--port", "0"]).env(
        "LIVESERVE_PROXY",
        "/a=http://127.0.0.1:1,/b=http://127.0.0.1:2/base",
    );
    let running = Running::start(command);
    let lines = lines_until_watching(&running);
    let local = lines
        .iter()
        .find(|line| line.starts_with("Local:"))
        .expect("a Local: line");
    assert!(http_get(port_of(local), "/").starts_with("HTTP/1.1 200"));
    for expected in [
        "proxying /a → http://127.0.0.1:1",
        "proxying /b → http://127.0.0.1:2/base",
    ] {
        assert!(
            lines.iter().any(|line| line == expected),
            "{expected:?} in {lines:?}"
        );
    }
    assert_eq!(running.terminate().0.code(), Some(0));
}

#[test]
fn quiet_hides_the_proxy_lines() {
    let root = site(&[]);
    let mut command = liveserve();
    command
        .arg(root.path())
        .args(["--port", "0", "-q", "--proxy", "/a=http://127.0.0.1:1"]);
    let running = Running::start(command);
    port_of(&running.next_line());
    let (status, rest) = running.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(rest.is_empty(), "nothing but the Local: line: {rest:?}");
}

/// The lines of a child's stderr, as they come.
pub(crate) fn stderr_lines(running: &mut Running) -> mpsc::Receiver<String> {
    let stderr = BufReader::new(running.child.stderr.take().unwrap());
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

#[test]
fn verbose_logs_each_proxied_request_with_its_upstream() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstream = runtime.block_on(crate::upstream::Upstream::start());
    let root = site(&[]);
    let mut command = liveserve();
    command.arg(root.path()).args([
        "--port",
        "0",
        "-v",
        "--proxy",
        &format!("/api={}", upstream.origin()),
    ]);
    let mut running = Running::start(command);
    let errors = stderr_lines(&mut running);
    let port = port_of(running.lines_until_url().last().unwrap());
    let page = http_get(port, "/api/page");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("backend page"), "{page}");
    let line = loop {
        let line = errors
            .recv_timeout(TIMEOUT)
            .expect("a log line for the request in time");
        if line.contains("/api/page") {
            break line;
        }
    };
    // `GET /api/page 200 1.2 ms ← http://127.0.0.1:PORT 200 1.0 ms`
    assert!(line.contains("GET /api/page 200 "), "{line}");
    assert!(
        line.contains(&format!("← {} 200 ", upstream.origin())),
        "{line}"
    );
    assert!(line.trim_end().ends_with("ms"), "{line}");
    assert_eq!(running.terminate().0.code(), Some(0));
    drop(upstream);
}

#[test]
fn help_documents_the_proxy_flags_and_their_environment_twins() {
    let mut command = liveserve();
    command.arg("--help");
    let output = run_to_exit(command);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "--proxy",
        "--watch",
        "--proxy-timeout",
        "LIVESERVE_PROXY",
        "LIVESERVE_WATCH",
        "LIVESERVE_PROXY_TIMEOUT",
    ] {
        assert!(help.contains(needle), "{needle} in --help");
    }
}

// Watching settings --------------------------------------------------------------------------

/// Checked before anything binds: with the port held busy here, binding first would fail with
/// "already in use" (exit 1) instead.
#[test]
fn bad_watching_settings_are_one_line_and_exit_2_before_anything_binds() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let root = site(&[]);
    let cases: [(&[&str], &str); 4] = [
        (&["--wait", "999999999999"], "--wait"),
        (&["--poll=5"], "--poll"),
        (&["--ignore", "a{"], "--ignore"),
        (&["--exec", " "], "--exec needs a command"),
    ];
    for (args, needle) in cases {
        let mut command = liveserve();
        command
            .arg(root.path())
            .args(["--host", "127.0.0.1", "--port", &port])
            .args(args);
        let output = run_to_exit(command);
        assert_one_line_error(&output, 2, needle);
        assert!(
            output.stdout.is_empty(),
            "{args:?}: nothing on stdout: {:?}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    drop(busy);
}

#[test]
fn verbose_says_how_many_folders_are_watched_natively_and_what_share_of_the_limit() {
    let root = site(&[
        ("index.html", b"x"),
        ("a/b/page.html", b"x"),
        ("c/site.css", b"x"),
        ("node_modules/lib/index.js", b"x"),
        (".git/HEAD", b"x"),
    ]);
    let mut command = liveserve();
    command.arg(root.path()).args(["--port", "0", "-v"]);
    let running = Running::start(command);
    let line = loop {
        let line = running.next_line();
        if line.contains("folders natively") {
            break line;
        }
    };
    // The root, a, a/b and c: not node_modules or .git.
    assert!(line.starts_with("watching 4 folders natively ("), "{line}");
    let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches").unwrap();
    assert!(
        line.contains(&format!(
            "% of fs.inotify.max_user_watches = {})",
            limit.trim()
        )),
        "{line}"
    );
    assert_eq!(running.terminate().0.code(), Some(0));
}
