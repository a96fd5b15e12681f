//! Watching that notices what native events miss, end to end: a real FUSE mount (bindfs) whose
//! backing folder is written behind its back, a real user out of inotify instances, real editors'
//! save patterns and builds, against the real server (in-process or the built binary) and real
//! WebSocket clients.
//!
//! Timing-sensitive tests run the in-process server on a multi-threaded runtime: on the default
//! single thread the batcher could not run while a test writes, and every burst would look like
//! one batch whatever the batcher does.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use liveserve::__private::protocol::ServerMessage;
use liveserve::__private::settings::Polling;
use tempfile::TempDir;

use crate::cli::{Running, http_get, liveserve, port_of, stderr_lines};
use crate::reload::{Client, generation, paths};
use crate::support::{TIMEOUT, TestServer, site, write};

// Fixtures -----------------------------------------------------------------------------------

/// A bindfs mount of a temporary folder: `src` is the folder itself, `mnt` shows it through
/// FUSE. A write to `src` goes behind the mount's back: inotify on `mnt` never hears of it.
/// Unmounted when dropped, also when a test panics.
struct BindMount {
    src: PathBuf,
    mnt: PathBuf,
    /// Dropped after `Drop::drop` has unmounted `mnt`, so its removal never goes through FUSE.
    _holder: TempDir,
}

/// bindfs options that turn off the kernel's FUSE attribute cache. By default the kernel keeps
/// a file's old size and time for a second after a write behind the mount's back; tests that
/// must see the new version at once, not a second later, mount with these.
const NO_ATTRIBUTE_CACHE: &[&str] = &["-o", "attr_timeout=0,entry_timeout=0,negative_timeout=0"];

impl BindMount {
    /// Mounts a folder holding `files`; `None` (said on stderr) where this machine has no FUSE
    /// or no bindfs. Any other failure to mount fails the test.
    fn new(files: &[(&str, &[u8])], options: &[&str]) -> Option<BindMount> {
        if !Path::new("/dev/fuse").exists() {
            eprintln!("SKIPPED: /dev/fuse is missing, so no FUSE mount can be made here");
            return None;
        }
        let mut bindfs = Command::new("bindfs");
        let holder = tempfile::tempdir().unwrap();
        let base = holder.path().canonicalize().unwrap();
        let (src, mnt) = (base.join("src"), base.join("mnt"));
        std::fs::create_dir(&src).unwrap();
        std::fs::create_dir(&mnt).unwrap();
        for (path, content) in files {
            write(&src, path, content);
        }
        bindfs.args(options).arg(&src).arg(&mnt);
        let output = match bindfs.output() {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("SKIPPED: bindfs is not installed (Debian: apt-get install bindfs)");
                return None;
            }
            output => output.unwrap(),
        };
        assert!(
            output.status.success(),
            "{bindfs:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mount = BindMount {
            src,
            mnt,
            _holder: holder,
        };
        // bindfs returns once the mount is in place; make sure it is the FUSE one.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let point = format!(" {} ", mount.mnt.display());
        assert!(
            mountinfo
                .lines()
                .any(|line| line.contains(&point) && line.contains(" - fuse")),
            "{} is mounted with FUSE:\n{mountinfo}",
            mount.mnt.display()
        );
        Some(mount)
    }

    /// Writes `content` to `path` in the backing folder, behind the mount's back.
    fn write_behind(&self, path: &str, content: &[u8]) {
        write(&self.src, path, content);
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        // fusermount3 where bindfs is built on FUSE 3. A server still running (a test that
        // panicked) may keep the mount busy: then it is detached (`-z`).
        let unmounted = [
            ("fusermount", "-u"),
            ("fusermount3", "-u"),
            ("fusermount", "-uz"),
            ("fusermount3", "-uz"),
        ]
        .into_iter()
        .any(|(program, flags)| {
            Command::new(program)
                .arg(flags)
                .arg(&self.mnt)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        });
        if !unmounted {
            eprintln!("could not unmount {}", self.mnt.display());
        }
    }
}

/// Sets `path`'s modification time `ago` into the past (or to now, for `ZERO`), as `touch -d`.
fn set_modified(path: &Path, ago: Duration) {
    let file = File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - ago).unwrap();
}

/// The in-process server serving `folder` (outside any temporary folder of its own).
async fn serve_folder(
    folder: &Path,
    configure: impl FnOnce(&mut liveserve::__private::Config),
) -> TestServer {
    let folder = folder.to_path_buf();
    // The server's own temporary folder stays empty and unused: it serves `folder`.
    TestServer::start_with(tempfile::tempdir().unwrap(), |config| {
        config.root = folder;
        configure(config);
    })
    .await
}

/// Every line a child wrote to the pipe behind `lines`, until it closed it (it exited).
fn all_lines(lines: &mpsc::Receiver<String>) -> Vec<String> {
    let mut all = Vec::new();
    loop {
        match lines.recv_timeout(TIMEOUT) {
            Ok(line) => all.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => return all,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the pipe closed in time: {all:?}"),
        }
    }
}

/// The port of the `Local:` line; fails with what the child said on stderr if it exits first.
fn local_port(running: &Running, errors: &mpsc::Receiver<String>) -> u16 {
    loop {
        match running.lines.recv_timeout(TIMEOUT) {
            Ok(line) if line.starts_with("Local:") => return port_of(&line),
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("liveserve exited before serving: {:?}", all_lines(errors))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "no Local: line in time; stderr so far: {:?}",
                errors.try_iter().collect::<Vec<_>>()
            ),
        }
    }
}

/// Waits for a line containing `needle`; returns it.
fn line_containing(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        let line = lines
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("a line with {needle:?} in time"));
        if line.contains(needle) {
            return line;
        }
    }
}

/// Asserts that `message` reloads for every file in `expected` (listed, or every page).
// 1. Polling on FUSE, chosen at start --------------------------------------------------------

#[tokio::test]
async fn a_fuse_mount_is_polled_from_the_start_so_writes_behind_its_back_are_announced() {
    let Some(mount) = BindMount::new(&[("page.html", b"<body>one</body>")], &[]) else {
        return;
    };
    let mut command = liveserve();
    command.arg(&mount.mnt).args(["--port", "0"]);
    let mut running = Running::start(command);
    let errors = stderr_lines(&mut running);
    let port = local_port(&running, &errors);
    let (mut client, _) = Client::connect_to(([127, 0, 0, 1], port).into()).await;

    mount.write_behind("page.html", b"<body>two</body>");
    // The default interval (300 ms), plus up to a second of the kernel's attribute cache.
    assert_eq!(paths(&client.next().await), ["/page.html"]);
    client
        .assert_nothing_sent_for("the write after its message", &mount.mnt)
        .await;

    assert_eq!(running.terminate().0.code(), Some(0));
    let stderr = all_lines(&errors);
    let mnt = mount.mnt.display().to_string();
    let said: Vec<&String> = stderr
        .iter()
        .filter(|line| line.contains(&mnt) && line.contains("fuse") && line.contains("polling"))
        .collect();
    assert_eq!(said.len(), 1, "one line says it is polled: {stderr:?}");
    assert!(said[0].contains("300 ms"), "the default interval: {said:?}");
}

/// `--no-poll` on the same mount: no polling line, native watching only, and the stale-watch
/// check is what finds a write behind the mount's back (said on stderr).
#[tokio::test]
async fn no_poll_watches_a_fuse_mount_natively_and_serving_finds_the_lost_change() {
    let Some(mount) = BindMount::new(&[("page.html", b"<body>one</body>")], NO_ATTRIBUTE_CACHE)
    else {
        return;
    };
    let mut command = liveserve();
    command.arg(&mount.mnt).args(["--port", "0", "--no-poll"]);
    let mut running = Running::start(command);
    let errors = stderr_lines(&mut running);
    let port = local_port(&running, &errors);
    let (mut client, _) = Client::connect_to(([127, 0, 0, 1], port).into()).await;
    let page = http_get(port, "/page.html");
    assert!(page.contains("one"), "{page}");

    mount.write_behind("page.html", b"<body>two, behind its back</body>");
    set_modified(&mount.src.join("page.html"), Duration::from_secs(10));
    client
        .assert_nothing_sent_for(
            "a write behind the mount's back, before it is served",
            &mount.mnt,
        )
        .await;
    let page = http_get(port, "/page.html");
    assert!(page.contains("two, behind its back"), "{page}");
    assert_eq!(paths(&client.next().await), ["/page.html"]);
    let said = line_containing(&errors, "changed without an event");
    assert!(said.contains("page.html"), "{said}");

    assert_eq!(running.terminate().0.code(), Some(0));
    let mnt = mount.mnt.display().to_string();
    let stderr = all_lines(&errors);
    assert!(
        !stderr
            .iter()
            .any(|line| line.contains(&mnt) && line.contains("polling")),
        "--no-poll: no polling line: {stderr:?}"
    );
}

// 2. Stale-watch check -----------------------------------------------------------------------

#[tokio::test]
async fn a_change_no_event_told_of_is_found_by_serving_and_its_subtree_polled_from_then_on() {
    let Some(mount) = BindMount::new(&[("page.html", b"<body>one</body>")], NO_ATTRIBUTE_CACHE)
    else {
        return;
    };
    let server = serve_folder(&mount.mnt, |config| {
        config.polling = Polling::Never;
        // Not about the default interval.
        config.poll_interval = Duration::from_millis(50);
    })
    .await;
    let (mut client, _) = Client::connect(&server).await;
    assert!(server.get("/page.html").await.text().contains("one"));

    let changed = "two, written behind the mount's back";
    mount.write_behind("page.html", format!("<body>{changed}</body>").as_bytes());
    // Long ago: not a change whose event may still be on its way.
    set_modified(&mount.src.join("page.html"), Duration::from_secs(10));
    client
        .assert_nothing_sent_for(
            "a write behind the mount's back, before it is served",
            &mount.mnt,
        )
        .await;

    let page = server.get("/page.html").await.text();
    assert!(page.contains(changed), "the new version is served: {page}");
    let message = client.next().await;
    assert!(
        matches!(message, ServerMessage::Reload { .. }),
        "{message:?}"
    );
    assert_eq!(paths(&message), ["/page.html"]);

    // Polled now: a later write is announced with no request.
    mount.write_behind("page.html", b"<body>three</body>");
    assert_eq!(paths(&client.next().await), ["/page.html"]);
    client
        .assert_nothing_sent_for("the write after its message", &mount.mnt)
        .await;
    server.stop().await;
}

// 3. Watch limits ----------------------------------------------------------------------------

const NOBODY: &str = "65534";

/// Set for the copy of this test binary that holds nobody's inotify instances.
const HOLD_INOTIFY: &str = "WATCHING_TESTS_HOLD_INOTIFY_INSTANCES";

/// `program` run as user nobody (no supplementary groups), with no `LIVESERVE_` settings.
fn as_nobody(program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .args(["--clear-groups", "--"])
        .arg(program);
    for (name, _) in std::env::vars() {
        if name.starts_with("LIVESERVE_") {
            command.env_remove(name);
        }
    }
    command
}

/// `program`, or a copy of it in `copies` when a folder above it keeps others out (a target
/// folder under `/root`): nobody must be able to run it.
fn runnable_by_nobody(program: &Path, copies: &Path) -> PathBuf {
    let others_may = |path: &Path, bits: u32| {
        std::fs::metadata(path).is_ok_and(|metadata| metadata.permissions().mode() & bits == bits)
    };
    let reachable = program
        .ancestors()
        .skip(1)
        .all(|folder| others_may(folder, 0o001));
    if reachable && others_may(program, 0o005) {
        return program.to_path_buf();
    }
    let copy = copies.join(program.file_name().unwrap());
    std::fs::copy(program, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// A process of user nobody holding every inotify instance the user may have; ended when
/// dropped.
struct InotifyHog {
    child: Child,
}

impl InotifyHog {
    fn start(test_binary: &Path, test_name: &str) -> InotifyHog {
        let mut command = as_nobody(test_binary);
        command
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(HOLD_INOTIFY, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let hog = InotifyHog { child };
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let held = line_containing(&lines, "holding ");
        eprintln!("inotify hog: {held}");
        hog
    }
}

impl Drop for InotifyHog {
    fn drop(&mut self) {
        // Its instances go with it. (Were this process killed instead, its stdin would close,
        // and it would exit all the same.)
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the hog process does: creates native watchers until one fails, says how many it holds,
/// and holds them until its stdin closes.
fn hold_every_inotify_instance() {
    let mut held = Vec::new();
    let error = loop {
        let handler = |_: notify::Result<notify::Event>| {};
        match <notify::RecommendedWatcher as notify::Watcher>::new(
            handler,
            notify::Config::default(),
        ) {
            Ok(watcher) => held.push(watcher),
            Err(error) => break error,
        }
        assert!(held.len() < 100_000, "no inotify instance limit to reach");
    };
    println!(
        "holding {} inotify instances; the next: {error}",
        held.len()
    );
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

#[tokio::test]
async fn a_user_out_of_inotify_instances_is_told_how_to_fix_it_and_served_by_polling() {
    if std::env::var_os(HOLD_INOTIFY).is_some() {
        hold_every_inotify_instance();
        return;
    }
    let copies = tempfile::tempdir().unwrap();
    std::fs::set_permissions(copies.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let this_test = format!(
        "{}::a_user_out_of_inotify_instances_is_told_how_to_fix_it_and_served_by_polling",
        module_path!().split_once("::").unwrap().1
    );
    let test_binary = runnable_by_nobody(&std::env::current_exe().unwrap(), copies.path());
    let server_binary = runnable_by_nobody(env!("CARGO_BIN_EXE_liveserve").as_ref(), copies.path());

    // Written by root, readable by everyone.
    let root = site(&[
        ("page.html", b"<body>one</body>"),
        ("css/site.css", b"body{}"),
    ]);
    for folder in [root.path(), &root.path().join("css")] {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for file in ["page.html", "css/site.css"] {
        let path = root.path().join(file);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    let _hog = InotifyHog::start(&test_binary, &this_test);
    let mut command = as_nobody(&server_binary);
    command.arg(root.path()).args(["--port", "0"]);
    let mut running = Running::start(command);
    let errors = stderr_lines(&mut running);
    let port = local_port(&running, &errors);
    let page = http_get(port, "/page.html");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");

    let (mut client, _) = Client::connect_to(([127, 0, 0, 1], port).into()).await;
    write(root.path(), "page.html", b"<body>two</body>");
    // Polled every 300 ms.
    assert_eq!(paths(&client.next().await), ["/page.html"]);

    assert_eq!(running.terminate().0.code(), Some(0));
    let stderr = all_lines(&errors);
    let about_instances: Vec<&String> = stderr
        .iter()
        .filter(|line| line.contains("max_user_instances"))
        .collect();
    assert_eq!(about_instances.len(), 1, "said once: {stderr:?}");
    assert!(
        about_instances[0].contains("sysctl fs.inotify.max_user_instances="),
        "says how to raise it: {about_instances:?}"
    );
    assert!(
        !stderr.iter().any(|line| line.contains("No space left")),
        "{stderr:?}"
    );
}

// 4. Unchanged saves are silent --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_that_change_no_byte_are_silent_and_a_real_change_is_one_message() {
    let server = TestServer::start(site(&[("page.html", b"<body>one</body>")])).await;
    let root = server.root.path().to_path_buf();
    let page = root.join("page.html");
    let (mut client, _) = Client::connect(&server).await;
    assert!(server.get("/page.html").await.text().contains("one"));

    set_modified(&page, Duration::ZERO);
    client.assert_nothing_sent_for("`touch`", &root).await;
    std::fs::write(&page, b"<body>one</body>").unwrap();
    client
        .assert_nothing_sent_for("the same bytes saved again", &root)
        .await;
    std::fs::remove_file(&page).unwrap();
    std::fs::write(&page, b"<body>one</body>").unwrap();
    client
        .assert_nothing_sent_for(
            "a checkout of the same bytes (removed, written again)",
            &root,
        )
        .await;

    std::fs::write(&page, b"<body>two</body>").unwrap();
    assert_eq!(paths(&client.next().await), ["/page.html"]);
    client
        .assert_nothing_sent_for("the change after its message", &root)
        .await;
    server.stop().await;
}

// 5. A build that replaces its output --------------------------------------------------------

/// Writes `files` into `folder` one by one, 25 ms apart, as a bundler or doc generator writes
/// its output: the gaps are the stimulus, not a wait for anything.
async fn build(folder: &Path, files: &[&str]) {
    for (i, file) in files.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        write(folder, file, format!("built {file}").as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_replaces_its_output_folder_is_one_message_after_its_last_file() {
    let holder = tempfile::tempdir().unwrap();
    write(holder.path(), "dist/index.html", b"old");
    write(holder.path(), "dist/assets/app.js", b"old");
    let server = TestServer::start_below(holder, "dist", |_| {}).await;
    let dist = server.root.path().join("dist");
    let (mut client, _) = Client::connect(&server).await;

    // The whole output, then one subfolder of it.
    let index_and_all = [
        "index.html",
        "about.html",
        "assets/app.js",
        "assets/app.css",
        "assets/vendor.js",
        "blog/index.html",
    ];
    let assets = [
        "assets/a.js",
        "assets/b.js",
        "assets/c.css",
        "assets/d.js",
        "assets/e.js",
        "assets/f.js",
    ];
    for (removed, files) in [
        (dist.clone(), &index_and_all),
        (dist.join("assets"), &assets),
    ] {
        std::fs::remove_dir_all(&removed).unwrap();
        build(&dist, files).await;
        let message = client.next().await;
        // Listing the last file, it came after the last write.
        let listed = paths(&message);
        for file in files {
            assert!(
                listed.contains(&format!("/{file}")),
                "/{file} in {message:?}"
            );
        }
        client
            .assert_nothing_sent_for("the rebuild after its message", &dist)
            .await;
    }
    server.stop().await;
}

// 6. A gitignored folder pages load from -----------------------------------------------------

fn gitignored_dist_site() -> TempDir {
    site(&[
        (".gitignore", b"dist/\n"),
        ("index.html", b"<script src=\"/dist/app.js\"></script>"),
        ("dist/app.js", b"one()"),
    ])
}

#[tokio::test]
async fn a_gitignored_folder_is_watched_once_a_page_loads_from_it() {
    let server = TestServer::start(gitignored_dist_site()).await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;
    write(&root, "dist/app.js", b"two()");
    client
        .assert_nothing_sent_for("an edit in the gitignored dist/ before any request", &root)
        .await;

    assert_eq!(server.get("/dist/app.js").await.body, b"two()");
    // The request told the watcher before this sentinel's event: once the sentinel is
    // announced, `dist` is watched. Starting to watch it announces nothing.
    client
        .assert_nothing_sent_for("serving dist/app.js (and starting to watch dist/)", &root)
        .await;
    write(&root, "dist/app.js", b"three()");
    assert_eq!(paths(&client.next().await), ["/dist/app.js"]);
    client
        .assert_nothing_sent_for("the edit after its message", &root)
        .await;
    server.stop().await;
}

#[test]
fn watching_a_gitignored_folder_pages_load_from_is_said_on_stderr() {
    let root = gitignored_dist_site();
    let mut command = liveserve();
    command.arg(root.path()).args(["--port", "0"]);
    let mut running = Running::start(command);
    let errors = stderr_lines(&mut running);
    let port = local_port(&running, &errors);
    assert!(http_get(port, "/dist/app.js").starts_with("HTTP/1.1 200"));
    line_containing(
        &errors,
        "watching dist/: pages load files from it, though .gitignore lists it",
    );
    assert_eq!(running.terminate().0.code(), Some(0));
}

// 7. --ignore speaks gitignore ---------------------------------------------------------------

#[tokio::test]
async fn ignore_patterns_are_read_as_in_a_gitignore() {
    let files: &[(&str, &[u8])] = &[
        ("page.html", b"x"),
        ("dist/app.js", b"x"),
        ("sub/dist/x.js", b"x"),
        ("a/b/chunks/x.js", b"x"),
        ("a/b/kept.js", b"x"),
    ];
    // Anchored spellings mean the folder at the root; the others a folder of that name anywhere.
    for (spelling, anchored) in [
        ("dist/", false),
        ("/dist", true),
        ("./dist", true),
        ("dist", false),
    ] {
        let server = TestServer::start_with(site(files), |config| {
            config.ignore = vec![spelling.to_owned()];
        })
        .await;
        let root = server.root.path().to_path_buf();
        let (mut client, _) = Client::connect(&server).await;
        write(&root, "dist/app.js", b"edited");
        write(&root, "dist/new/deeper.js", b"new");
        let what = format!("edits in dist/ with --ignore {spelling}");
        client.assert_nothing_sent_for(&what, &root).await;

        write(&root, "sub/dist/x.js", b"edited");
        if anchored {
            let message = client.next().await;
            assert_eq!(paths(&message), ["/sub/dist/x.js"], "--ignore {spelling}");
        } else {
            let what = format!("an edit in sub/dist/ with --ignore {spelling}");
            client.assert_nothing_sent_for(&what, &root).await;
        }
        server.stop().await;
    }

    let server = TestServer::start_with(site(files), |config| {
        config.ignore = vec!["chunks".to_owned()];
    })
    .await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;
    write(&root, "a/b/chunks/x.js", b"edited");
    client
        .assert_nothing_sent_for("an edit in a/b/chunks/ with --ignore chunks", &root)
        .await;
    // Its neighbours are watched.
    write(&root, "a/b/kept.js", b"edited");
    assert_eq!(paths(&client.next().await), ["/a/b/kept.js"]);
    server.stop().await;
}

// 8. Editors' save patterns ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_editors_save_pattern_is_one_message_naming_the_file() {
    let server = TestServer::start(site(&[("page.html", b"<body>one</body>")])).await;
    let root = server.root.path().to_path_buf();
    let at = |name: &str| root.join(name);
    let (mut client, _) = Client::connect(&server).await;

    let saves: [(&str, &dyn Fn()); 4] = [
        ("VS Code: truncate and write in place", &|| {
            let mut file = File::create(at("page.html")).unwrap();
            file.write_all(b"<body>vscode</body>").unwrap();
        }),
        ("JetBrains safe write", &|| {
            std::fs::write(at("page.html___jb_tmp___"), b"<body>jetbrains</body>").unwrap();
            std::fs::rename(at("page.html"), at("page.html___jb_old___")).unwrap();
            std::fs::rename(at("page.html___jb_tmp___"), at("page.html")).unwrap();
            std::fs::remove_file(at("page.html___jb_old___")).unwrap();
        }),
        ("sed -i", &|| {
            std::fs::write(at("sedAb12Cd"), b"<body>sed</body>").unwrap();
            std::fs::rename(at("sedAb12Cd"), at("page.html")).unwrap();
        }),
        ("vim", &|| {
            // Probe that the folder is writable, keep the original as a backup, write the new
            // file, delete the backup.
            std::fs::write(at("4913"), b"").unwrap();
            std::fs::remove_file(at("4913")).unwrap();
            std::fs::rename(at("page.html"), at("page.html~")).unwrap();
            std::fs::write(at("page.html"), b"<body>vim</body>").unwrap();
            std::fs::remove_file(at("page.html~")).unwrap();
        }),
    ];
    for (editor, save) in saves {
        save();
        let message = client.next().await;
        assert!(
            matches!(message, ServerMessage::Reload { .. }),
            "{editor}: {message:?}"
        );
        assert_eq!(paths(&message), ["/page.html"], "{editor}");
        client
            .assert_nothing_sent_for(&format!("{editor} after its message"), &root)
            .await;
    }
    server.stop().await;
}

// 9. No edit lost at start -------------------------------------------------------------------

#[tokio::test]
async fn an_edit_made_as_soon_as_the_url_is_printed_is_announced() {
    let root = tempfile::tempdir().unwrap();
    for page in 0..3_000 {
        write(
            root.path(),
            &format!("posts/p{page}/index.html"),
            b"<p>post</p>",
        );
    }
    // The deepest folder is watched last: the walk goes level by level.
    let last = "posts/p2999/deep/er/still/last.html";
    write(root.path(), last, b"<p>before</p>");

    let mut command = liveserve();
    command.arg(root.path()).args(["--port", "0", "-v"]);
    let mut running = Running::start(command);
    let errors = stderr_lines(&mut running);
    let port = local_port(&running, &errors);
    write(root.path(), last, b"<p>edited at once</p>");

    line_containing(&errors, &format!("changed /{last}"));
    let (_client, hello) = Client::connect_to(([127, 0, 0, 1], port).into()).await;
    assert!(generation(&hello) >= 1, "the edit was announced: {hello:?}");
    assert_eq!(running.terminate().0.code(), Some(0));
}

// 10. A stylesheet save closes early; a burst keeps one message ------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stylesheet_save_is_one_css_message_and_a_burst_of_thirty_files_one_reload() {
    let mut files = vec![("page.html".to_owned(), b"x".to_vec())];
    for i in 0..15 {
        files.push((format!("gen/page{i}.html"), b"x".to_vec()));
        files.push((format!("gen/style{i}.css"), b"x".to_vec()));
    }
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(path, content)| (path.as_str(), content.as_slice()))
        .collect();
    let server = TestServer::start(site(&files)).await;
    let root = server.root.path().to_path_buf();
    let (mut client, _) = Client::connect(&server).await;

    write(&root, "gen/style0.css", b"body{color:red}");
    let message = client.next().await;
    assert!(matches!(message, ServerMessage::Css { .. }), "{message:?}");
    assert_eq!(paths(&message), ["/gen/style0.css"]);
    client
        .assert_nothing_sent_for("one stylesheet after its message", &root)
        .await;

    let styles: Vec<String> = (0..15).map(|i| format!("gen/style{i}.css")).collect();
    let pages: Vec<String> = (0..15).map(|i| format!("gen/page{i}.html")).collect();
    let styles_first: Vec<&String> = styles.iter().chain(&pages).collect();
    let interleaved: Vec<&String> = pages
        .iter()
        .zip(&styles)
        .flat_map(|(page, style)| [page, style])
        .collect();
    for (round, order) in [styles_first, interleaved].into_iter().enumerate() {
        for file in &order {
            write(&root, file, format!("round {round}").as_bytes());
        }
        let expected: Vec<String> = order.iter().map(|file| format!("/{file}")).collect();
        // Finished stylesheets may go out first (a swap is never a page load); the pages then
        // come in exactly one reload covering the whole burst.
        let mut named: Vec<String> = Vec::new();
        let everything = loop {
            match client.next().await {
                ServerMessage::Css { paths, .. } => named.extend(paths),
                ServerMessage::Reload { all, paths, .. } => {
                    named.extend(paths);
                    break all;
                }
                other => panic!("{other:?}"),
            }
        };
        named.sort();
        named.dedup();
        let mut expected = expected;
        expected.sort();
        assert!(
            everything || named == expected,
            "the burst is covered: {named:?}"
        );
        client
            .assert_nothing_sent_for("the burst after its reload", &root)
            .await;
    }
    server.stop().await;
}
