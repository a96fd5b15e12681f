//! The built binary's settings, read from what the server really does: flags over variables over
//! `liveserve.toml` key by key (a list from above replaces the file's whole), `--no-config`,
//! `--config FILE`; bad settings refused in one line with exit 2 before anything binds, naming
//! the variable or the file's line they came from; on/off variables; `--open` through `BROWSER`
//! (the URL it gets, never run when off, one warning without a display or when it fails, no
//! zombie); a save to `liveserve.toml` announced, and the file never served.

use std::fs::{self, Permissions};
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};

use tempfile::TempDir;

use crate::cli::{
    Running, assert_one_line_error, http_get, liveserve, port_of, run_to_exit, stderr_lines,
};
use crate::support::{Reply, TIMEOUT, site, write};

/// Arguments after the root, and variables, as a case of a table gives them.
type Args<'a> = &'a [&'a str];
type Env<'a> = &'a [(&'a str, &'a str)];

/// `liveserve ROOT` with the variables `env`.
fn serving(root: &Path, env: Env) -> Command {
    let mut command = liveserve();
    command.arg(root).envs(env.iter().copied());
    command
}

/// `liveserve ROOT --port 0 ARGS` with the variables `env`.
fn command(root: &Path, args: Args, env: Env) -> Command {
    let mut command = serving(root, env);
    command.args(["--port", "0"]).args(args);
    command
}

/// A running binary: what it printed up to its `Local:` line, its stderr lines, its port.
struct Server {
    running: Running,
    errors: Receiver<String>,
    printed: Vec<String>,
    port: u16,
}

/// What a stopped server printed after its `Local:` line, and on stderr since last read.
struct Stopped {
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Server {
    fn start(command: Command) -> Server {
        Server::try_start(command)
            .unwrap_or_else(|stderr| panic!("liveserve did not start: {stderr}"))
    }

    /// The server once it printed its `Local:` line, or what it said on stderr if it exited.
    fn try_start(command: Command) -> Result<Server, String> {
        let mut running = Running::start(command);
        let errors = stderr_lines(&mut running);
        let mut printed = Vec::new();
        loop {
            match running.lines.recv_timeout(TIMEOUT) {
                Ok(line) => {
                    let local = line.starts_with("Local:");
                    printed.push(line);
                    if local {
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    drop(running);
                    return Err(rest_of(&errors).join("\n"));
                }
                Err(RecvTimeoutError::Timeout) => panic!("the Local: line in time: {printed:?}"),
            }
        }
        let port = port_of(printed.last().unwrap());
        Ok(Server {
            running,
            errors,
            printed,
            port,
        })
    }

    fn get(&self, path: &str) -> Reply {
        Reply::parse(http_get(self.port, path).as_bytes())
    }

    /// Stderr lines up to and including the first that contains `needle`.
    fn stderr_until(&self, needle: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self
                .errors
                .recv_timeout(TIMEOUT)
                .unwrap_or_else(|_| panic!("a stderr line with {needle:?} in time; had {lines:?}"));
            let done = line.contains(needle);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Stops it with SIGTERM, which must be a clean exit.
    fn stop(self) -> Stopped {
        let (status, stdout) = self.running.terminate();
        assert_eq!(status.code(), Some(0), "a clean exit");
        Stopped {
            stdout,
            stderr: rest_of(&self.errors),
        }
    }
}

/// The lines of an exited process's stream not read yet.
fn rest_of(lines: &Receiver<String>) -> Vec<String> {
    let mut rest = Vec::new();
    loop {
        match lines.recv_timeout(TIMEOUT) {
            Ok(line) => rest.push(line),
            Err(RecvTimeoutError::Disconnected) => return rest,
            Err(RecvTimeoutError::Timeout) => panic!("the stream ended in time: {rest:?}"),
        }
    }
}

// Layers ----------------------------------------------------------------------------------------

#[test]
fn a_flag_beats_a_variable_which_beats_the_config_file_key_by_key() {
    let root = site(&[
        ("index.html", b"<body>home</body>"),
        (
            "liveserve.toml",
            b"header = [\"X-Layer: file\", \"X-Other: file\"]\nspa = true\n",
        ),
    ]);
    let cases: [(Args, Env, &str); 3] = [
        (&[], &[], "file"),
        (&[], &[("LIVESERVE_HEADER", "X-Layer: env")], "env"),
        (
            &["--header", "X-Layer: flag"],
            &[("LIVESERVE_HEADER", "X-Layer: env")],
            "flag",
        ),
    ];
    for (args, env, layer) in cases {
        let server = Server::start(command(root.path(), args, env));
        let page = server.get("/");
        assert_eq!(page.header("x-layer"), Some(layer), "{args:?} {env:?}");
        // A list set above the file replaces the file's list, not just the same header.
        let other = (layer == "file").then_some("file");
        assert_eq!(page.header("x-other"), other, "{args:?} {env:?}");
        // Only the file sets `spa`, so it applies whatever sets the headers.
        assert_eq!(server.get("/deep/route").status, 200, "{args:?} {env:?}");
        server.stop();
    }
}

/// Whether the binary ran quietly: its first stdout line is the `Local:` line, and nothing
/// follows it.
fn runs_quietly(command: Command) -> bool {
    let server = Server::start(command);
    let quiet = server.printed.len() == 1;
    let banner = server.printed[0].clone();
    let stopped = server.stop();
    if quiet {
        assert!(
            stopped.stdout.is_empty(),
            "only the Local: line: {:?}",
            stopped.stdout
        );
    } else {
        assert!(banner.starts_with("liveserve "), "the banner: {banner}");
        assert!(!stopped.stdout.is_empty(), "the lines after Local:");
    }
    quiet
}

#[test]
fn an_on_off_key_of_the_file_gives_way_to_a_conflicting_flag_or_variable() {
    let root = site(&[("liveserve.toml", b"quiet = true\n")]);
    assert!(runs_quietly(command(root.path(), &[], &[])));
    let cases: [(Args, Env); 2] = [(&["-v"], &[]), (&[], &[("LIVESERVE_VERBOSE", "1")])];
    for (args, env) in cases {
        let server = Server::start(command(root.path(), args, env));
        assert!(server.printed.len() > 1, "not quiet: {:?}", server.printed);
        assert_eq!(server.get("/").status, 200);
        // Verbose: the request is logged.
        server.stderr_until("GET / 200");
        server.stop();
    }
}

#[test]
fn no_config_ignores_the_file_and_config_reads_another_relative_to_itself() {
    let root = site(&[
        ("index.html", b"<body>home</body>"),
        ("liveserve.toml", b"header = [\"X-Layer: root file\"]\n"),
    ]);
    let elsewhere = site(&[
        (
            "other.toml",
            b"header = [\"X-Layer: other file\"]\nmount = [\"/v=vendor\"]\n",
        ),
        ("vendor/lib.css", b"lib"),
    ]);
    let other = elsewhere.path().join("other.toml");

    let server = Server::start(command(root.path(), &[], &[]));
    assert_eq!(server.get("/").header("x-layer"), Some("root file"));
    let file = root.path().join("liveserve.toml");
    assert_eq!(
        server.running.next_line(),
        format!("settings from {}", file.display())
    );
    server.stop();

    let server = Server::start(command(root.path(), &["--no-config"], &[]));
    assert_eq!(server.get("/").header("x-layer"), None);
    server.stop();

    let server = Server::start(command(
        root.path(),
        &["--config", other.to_str().unwrap()],
        &[],
    ));
    assert_eq!(server.get("/").header("x-layer"), Some("other file"));
    assert_eq!(
        server.running.next_line(),
        format!("settings from {}", other.display())
    );
    // The file's folders are relative to the file, not to where liveserve was started.
    let mounted = server.get("/v/lib.css");
    assert_eq!((mounted.status, mounted.text().as_str()), (200, "lib"));
    server.stop();
}

// Bad settings ---------------------------------------------------------------------------------

/// Runs `liveserve ROOT --host 127.0.0.1 ARGS` with `env`, which must fail. Unless the case sets
/// the port itself, `--port busy` is added: a port this test holds, so that a server that bound
/// before checking its settings would fail with "already in use" (exit 1) instead.
fn refusal(root: &Path, busy: &TcpListener, args: Args, env: Env) -> Output {
    let mut command = serving(root, env);
    command.args(["--host", "127.0.0.1"]).args(args);
    let sets_port =
        args.contains(&"--port") || env.iter().any(|(name, _)| *name == "LIVESERVE_PORT");
    if !sets_port {
        let port = busy.local_addr().unwrap().port().to_string();
        command.args(["--port", &port]);
    }
    run_to_exit(command)
}

/// Whether `output` is the refusal of a setting: exit 2, one line on stderr containing `needle`,
/// nothing on stdout. A failure is printed (by the assertion that failed) and returned.
fn refused(output: &Output, needle: &str) -> Result<(), String> {
    std::panic::catch_unwind(|| {
        assert_one_line_error(output, 2, needle);
        assert!(
            output.stdout.is_empty(),
            "nothing on stdout: {:?}",
            String::from_utf8_lossy(&output.stdout)
        );
    })
    .map_err(|_| {
        format!(
            "expected {needle:?}, got exit {:?}: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        )
    })
}

/// Asserts every case was refused, listing all that were not.
fn assert_all_refused(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "not refused as expected:\n{}",
        failures.join("\n")
    );
}

#[test]
fn bad_flags_are_refused_in_one_line_before_anything_binds() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let root = site(&[]);
    let folder = root.path().display().to_string();
    let missing = format!("/v={}", root.path().join("missing-dir").display());
    let (first, second) = (format!("/v={folder}"), format!("/v/={folder}"));
    let cases: [(&[&str], &str); 15] = [
        (&["--ignore", "a{b"], "--ignore"),
        (&["--ignore", "a["], "--ignore"),
        (&["--mount", &missing], "--mount"),
        (&["--mount", "v=dir"], "the route must start with '/'"),
        (
            &["--mount", &first, "--mount", &second],
            "claim the prefix /v",
        ),
        (&["--spa=missing.html"], "--spa"),
        (&["--header", "Bad Name: x"], "not a valid header name"),
        (&["--proxy", "ftp://x"], "only http:// backends"),
        (
            &["--allow-host", "a b"],
            "--allow-host \"a b\" is not a host name",
        ),
        (&["--wait", "70000"], "--wait 70000 is too long"),
        (&["--poll=5"], "--poll=5 is out of range"),
        (&["--port", "abc"], "must be a whole number"),
        (&["--port", "70000"], "is too large"),
        (&["--prot", "3"], "--port"),
        (&["--config", "/no/such/liveserve.toml"], "--config"),
    ];
    let mut failures: Vec<String> = cases
        .iter()
        .filter_map(|(args, needle)| {
            let output = refusal(root.path(), &busy, args, &[]);
            refused(&output, needle)
                .map_err(|failure| format!("{args:?}: {failure}"))
                .err()
        })
        .collect();
    let negative = refusal(root.path(), &busy, &["--port", "-1"], &[]);
    failures.extend(refused(&negative, "must be a positive number").err());
    let stderr = String::from_utf8_lossy(&negative.stderr);
    if stderr.contains("-- -1") {
        failures.push(format!(
            "--port -1 gets clap's advice for a value: {stderr}"
        ));
    }
    assert_all_refused(failures);
}

#[test]
fn a_bad_config_file_is_refused_in_one_line_naming_its_line() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let cases: [(&str, usize, &str); 6] = [
        ("prot = 3\n", 1, "unknown key prot; did you mean port?"),
        ("quiet = \"yes\"\n", 1, "quiet: expected true or false"),
        (
            "# the team's settings\nquiet = false\nwait = 100000\n",
            3,
            "--wait 100000 is too long",
        ),
        ("spa = true\nport = \n", 2, ""),
        (
            "[server]\nport = 3000\n",
            1,
            "[server]: the file has no sections",
        ),
        (
            "header = [\"Bad Name: x\"]\n",
            1,
            "--header \"Bad Name: x\"",
        ),
    ];
    let failures = cases
        .iter()
        .filter_map(|(text, line, says)| {
            let root = site(&[("liveserve.toml", text.as_bytes())]);
            let file = root.path().join("liveserve.toml");
            let output = refusal(root.path(), &busy, &[], &[]);
            let needle = format!("liveserve: error: {}:{line}: {says}", file.display());
            refused(&output, &needle)
                .map_err(|failure| format!("{text:?}: {failure}"))
                .err()
        })
        .collect();
    assert_all_refused(failures);
}

#[test]
fn a_bad_variable_is_refused_in_one_line_naming_the_variable() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let root = site(&[]);
    let cases = [
        ("LIVESERVE_PORT", "abc", "must be a whole number"),
        ("LIVESERVE_PORT", "-1", "must be a positive number"),
        ("LIVESERVE_QUIET", "maybe", "maybe"),
        ("LIVESERVE_WAIT", "70000", "--wait 70000 is too long"),
        ("LIVESERVE_MOUNT", "v=dir", "--mount \"v=dir\""),
        ("LIVESERVE_ALLOW_HOST", "a b", "--allow-host \"a b\""),
    ];
    let failures = cases
        .iter()
        .filter_map(|(variable, value, says)| {
            let output = refusal(root.path(), &busy, &[], &[(*variable, *value)]);
            let start = format!("liveserve: error: {variable}: ");
            let named = refused(&output, &start).and_then(|()| refused(&output, says));
            named
                .map_err(|failure| format!("{variable}={value}: {failure}"))
                .err()
        })
        .collect();
    assert_all_refused(failures);
}

#[test]
fn on_off_variables_take_the_words_people_write() {
    let root = site(&[]);
    for on in ["1", "yes", "true", "on", "TRUE"] {
        let quiet = runs_quietly(command(root.path(), &[], &[("LIVESERVE_QUIET", on)]));
        assert!(quiet, "LIVESERVE_QUIET={on}");
    }
    for off in ["0", "no", "false", "off"] {
        let quiet = runs_quietly(command(root.path(), &[], &[("LIVESERVE_QUIET", off)]));
        assert!(!quiet, "LIVESERVE_QUIET={off}");
    }
}

#[test]
fn a_variable_set_to_off_does_not_conflict_with_the_opposite_flag() {
    let root = site(&[("index.html", b"<body>home</body>")]);
    let file = root.path().join("liveserve.toml");
    fs::write(&file, "header = [\"X-Layer: file\"]\n").unwrap();
    let config = file.to_str().unwrap();
    let cases: [(&str, &str, &[&str]); 4] = [
        ("LIVESERVE_QUIET", "0", &["-v"]),
        ("LIVESERVE_VERBOSE", "off", &["-q"]),
        ("LIVESERVE_NO_CONFIG", "false", &["--config", config]),
        ("LIVESERVE_POLL", "no", &["--no-poll"]),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(variable, value, args)| {
            let command = command(root.path(), args, &[(variable, value)]);
            let server = match Server::try_start(command) {
                Ok(server) => server,
                Err(stderr) => return Some(format!("{variable}={value} {args:?}: {stderr}")),
            };
            assert_eq!(server.get("/").status, 200);
            server.stop();
            None
        })
        .collect();
    assert!(failures.is_empty(), "refused:\n{}", failures.join("\n"));
}

// --open ----------------------------------------------------------------------------------------

/// A stand-in for the user's browser, for `BROWSER`: a script that connects here, sends the URL
/// it was given, and waits until the test hangs up, so it stays a child of liveserve until then.
struct FakeBrowser {
    script: PathBuf,
    address: std::net::SocketAddr,
    /// The URL of the first run, with the connection that keeps it waiting.
    opened: Receiver<(String, TcpStream)>,
    _dir: TempDir,
}

impl FakeBrowser {
    fn new() -> FakeBrowser {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("browser");
        fs::write(
            &script,
            format!(
                "#!/bin/bash\nexec 3<>/dev/tcp/127.0.0.1/{}\nprintf '%s\\n' \"$1\" >&3\nread -r -u 3 _\n",
                address.port()
            ),
        )
        .unwrap();
        fs::set_permissions(&script, Permissions::from_mode(0o755)).unwrap();
        let (send, opened) = mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut url = String::new();
            let _ = BufReader::new(&stream).read_line(&mut url);
            let _ = send.send((url.trim_end().to_owned(), stream));
        });
        FakeBrowser {
            script,
            address,
            opened,
            _dir: dir,
        }
    }

    fn env(&self) -> (&'static str, &str) {
        ("BROWSER", self.script.to_str().unwrap())
    }

    /// The URL the browser was started with; it exits once this returns.
    fn url(&self) -> String {
        let (url, _hang_up) = self
            .opened
            .recv_timeout(TIMEOUT)
            .expect("the browser was started in time");
        url
    }
}

impl Drop for FakeBrowser {
    fn drop(&mut self) {
        // Ends the accepting thread if no browser ever came.
        let _ = TcpStream::connect(self.address);
    }
}

/// The children of process `pid`, with their states (`S`, `R`, `Z`...), from `/proc`.
fn children_of(pid: u32) -> Vec<(u32, char)> {
    let mut children = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (name) state ppid ...`: the name may hold spaces and parentheses.
        let Some((_, fields)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = fields.split_whitespace();
        let state = fields.next().and_then(|state| state.chars().next());
        let parent = fields.next().and_then(|parent| parent.parse::<u32>().ok());
        if let (Some(state), Some(parent)) = (state, parent)
            && parent == pid
        {
            children.push((child, state));
        }
    }
    children
}

// liveserve starts the browser before it serves, and `Command::spawn` returns only once the
// program has been executed. The fake browser then waits for the test to hang up. So once a
// request has been answered, a browser that was started is a child of liveserve, and one that is
// not there was never started.

#[test]
fn open_gives_the_browser_the_root_url_or_the_path_asked_for() {
    let root = site(&[("index.html", b"<body>home</body>")]);
    let cases: [(Args, Env, &str); 4] = [
        (&[], &[("LIVESERVE_OPEN", "true")], "/"),
        (&[], &[("LIVESERVE_OPEN", "1")], "/"),
        (&["--open"], &[], "/"),
        (&["--open=/docs/"], &[], "/docs/"),
    ];
    for (args, env, path) in cases {
        let browser = FakeBrowser::new();
        let mut env = env.to_vec();
        env.push(browser.env());
        let server = Server::start(command(root.path(), args, &env));
        assert_eq!(server.get("/").status, 200);
        let children = children_of(server.running.child.id());
        assert_eq!(
            children.len(),
            1,
            "{args:?} {env:?}: the browser: {children:?}"
        );
        let expected = format!("http://localhost:{}{path}", server.port);
        assert_eq!(browser.url(), expected, "{args:?} {env:?}");
        server.stop();
    }
}

#[test]
fn open_off_never_starts_the_browser() {
    let root = site(&[("index.html", b"<body>home</body>")]);
    let cases: [(&[&str], &str); 3] = [(&[], "false"), (&[], "0"), (&["--open=off"], "no")];
    for (args, variable) in cases {
        let browser = FakeBrowser::new();
        let env = [("LIVESERVE_OPEN", variable), browser.env()];
        let server = Server::start(command(root.path(), args, &env));
        assert_eq!(server.get("/").status, 200);
        let children = children_of(server.running.child.id());
        assert_eq!(
            children,
            [],
            "LIVESERVE_OPEN={variable} {args:?}: no browser"
        );
        server.stop();
    }
}

/// Asserts exactly one of `lines` is a warning, and that it contains every one of `needles`.
fn assert_one_warning(lines: &[String], needles: &[&str]) {
    let warnings: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning: {lines:?}");
    for needle in needles {
        assert!(
            warnings[0].contains(needle),
            "{needle:?} in {:?}",
            warnings[0]
        );
    }
}

#[test]
fn open_without_a_display_warns_once_and_keeps_serving() {
    let root = site(&[("index.html", b"<body>home</body>")]);
    let mut command = command(root.path(), &["--open"], &[]);
    for variable in ["BROWSER", "DISPLAY", "WAYLAND_DISPLAY"] {
        command.env_remove(variable);
    }
    let server = Server::start(command);
    let mut lines = server.stderr_until("could not open a browser");
    assert_eq!(server.get("/").status, 200, "still serving");
    let url = format!("open http://localhost:{}/ yourself", server.port);
    lines.extend(server.stop().stderr);
    assert_one_warning(&lines, &["no display", &url]);
}

#[test]
fn a_browser_that_fails_is_one_warning_and_no_zombie() {
    let root = site(&[("index.html", b"<body>home</body>")]);
    let server = Server::start(command(root.path(), &["--open"], &[("BROWSER", "false")]));
    let mut lines = server.stderr_until("could not open a browser");
    // The warning is printed once the browser has been waited for.
    let children = children_of(server.running.child.id());
    assert!(
        children.iter().all(|(_, state)| *state != 'Z'),
        "no zombie: {children:?}"
    );
    assert_eq!(server.get("/").status, 200, "still serving");
    let url = format!("open http://localhost:{}/ yourself", server.port);
    lines.extend(server.stop().stderr);
    assert_one_warning(&lines, &["false failed", &url]);
}

// The config file while running ------------------------------------------------------------------

/// Saves `file`, the config file of `server` (started with -v on `root`), and asserts that one
/// stderr line says only a restart applies it, and that the save reloaded nothing.
fn assert_save_announced(server: &Server, root: &Path, file: &Path) {
    fs::write(file, "header = [\"X-Layer: second\"]\n").unwrap();
    let said = server.stderr_until("restart");
    let name = file.file_name().unwrap().to_str().unwrap();
    let expected = format!("{name} changed; restart liveserve to apply it");
    assert!(said.last().unwrap().contains(&expected), "{said:?}");
    // With -v each batch of changes is logged after the events before it were handled: once the
    // sentinel's is there, anything the save caused has been said.
    write(root, "sentinel.txt", b"after the save");
    let after = server.stderr_until("/sentinel.txt");
    assert!(
        !after.iter().any(|line| line.contains(name)),
        "one line for the save, and no reload: {after:?}"
    );
    assert_eq!(
        server.get("/").header("x-layer"),
        Some("first"),
        "applied only by a restart"
    );
}

#[test]
fn a_save_to_the_config_file_says_a_restart_applies_it_and_the_file_is_never_served() {
    let root = site(&[
        ("index.html", b"<body>home</body>"),
        ("liveserve.toml", b"header = [\"X-Layer: first\"]\n"),
    ]);
    let server = Server::start(command(root.path(), &["-v"], &[]));
    let file = server.get("/liveserve.toml");
    assert_eq!(file.status, 404);
    assert!(!file.text().contains("X-Layer"), "{}", file.text());
    assert_save_announced(&server, root.path(), &root.path().join("liveserve.toml"));
    server.stop();
}

/// A config file outside the root is watched through its own folder.
#[test]
fn a_save_to_a_config_file_outside_the_root_is_announced_too() {
    let root = site(&[("index.html", b"<body>home</body>")]);
    let elsewhere = site(&[("dev.toml", b"header = [\"X-Layer: first\"]\n")]);
    let file = elsewhere.path().join("dev.toml");
    let args = ["-v", "--config", file.to_str().unwrap()];
    let server = Server::start(command(root.path(), &args, &[]));
    assert_save_announced(&server, root.path(), &file);
    server.stop();
}
