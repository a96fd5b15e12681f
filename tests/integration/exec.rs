//! `--exec` through the real server and the real watcher: the command (a shell script in the
//! sources folder, which each test rewrites) runs at start and after each change to its sources;
//! pages get one update once it succeeds, the failure when it fails, and changes during a run
//! queue exactly one more run (or restart it, with `--exec-restart`).
//!
//! A run that must wait for the test waits on a gate file inside the script; the test waits for
//! what a run leaves on disk (a line in a log), with a deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use liveserve::__private::protocol::ServerMessage;
use tempfile::TempDir;

use crate::reload::{Client, paths};
use liveserve::__private::Config;

use crate::cli::{Running, liveserve, stderr_lines};
use crate::support::{TIMEOUT, TestServer, site, write};

/// A served folder, a sources folder with `build.sh` (at first it only says it ran), and a folder
/// for what the test and the script share (logs, gates), outside both.
struct Project {
    sources: TempDir,
    shared: TempDir,
}

impl Project {
    fn new() -> Project {
        let project = Project {
            sources: tempfile::tempdir().unwrap(),
            shared: tempfile::tempdir().unwrap(),
        };
        project.script(&format!("echo >> {}\n", q(&project.shared("started"))));
        project
    }

    /// The server running `sh build.sh` from the sources after each change there, once the
    /// run at start has begun: a script the test writes before that would run twice (at start,
    /// and again for the change).
    async fn serve(&self, restart: bool) -> TestServer {
        self.serve_with(move |config| config.exec_restart = restart)
            .await
    }

    /// [`Project::serve`], with `configure` changing the settings last (a test that serves a
    /// folder of its own sets `config.root`; the generated site is then left unused).
    async fn serve_with(&self, configure: impl FnOnce(&mut Config)) -> TestServer {
        let root = site(&[("index.html", b"<html><body>first</body></html>")]);
        let sources = self.sources.path().to_path_buf();
        let script = sources.join("build.sh");
        let server = TestServer::start_with(root, move |config| {
            config.watch = vec![sources];
            config.exec = Some(format!("sh '{}'", script.display()));
            configure(config);
        })
        .await;
        self.wait_for_lines("started", 1).await;
        server
    }

    /// Rewrites the build script (a change to the sources: a run follows), in one step as an
    /// editor saves: written beside, then renamed into place. (Written in place, a loaded
    /// machine could see the emptied file as one change and run it, then the rest as another.)
    fn script(&self, body: &str) {
        let beside = self.shared("build.sh.new");
        std::fs::write(&beside, body).unwrap();
        std::fs::rename(&beside, self.sources.path().join("build.sh")).unwrap();
    }

    /// A build that copies `from` to `to`, then logs its run in `runs.log`.
    fn copying_build(&self, from: &Path, to: &Path) {
        self.script(&format!(
            "echo >> {started}\ncp {from} {to}\necho run >> {log}\n",
            started = q(&self.shared("started")),
            from = q(from),
            to = q(to),
            log = q(&self.shared("runs.log")),
        ));
    }

    fn shared(&self, name: &str) -> PathBuf {
        self.shared.path().join(name)
    }

    /// Waits until the file `name` in the shared folder has `count` lines.
    async fn wait_for_lines(&self, name: &str, count: usize) {
        let lines = tokio::time::timeout(TIMEOUT, self.lines_once_at_least(name, count))
            .await
            .unwrap_or_else(|_| panic!("{name} did not reach {count} lines"));
        assert_eq!(lines, count, "{name}");
    }

    /// Asserts that the file `name` in the shared folder stays at `count` lines: a command that
    /// runs itself again does so within its settle time (100 ms), so a second is ample.
    async fn assert_lines_stay(&self, name: &str, count: usize) {
        let more = self.lines_once_at_least(name, count + 1);
        let ran = tokio::time::timeout(Duration::from_secs(1), more).await;
        assert!(ran.is_err(), "{name} grew past {count} lines: it ran again");
    }

    /// The number of lines in the file `name` in the shared folder, once it has at least `count`.
    async fn lines_once_at_least(&self, name: &str, count: usize) -> usize {
        let path = self.shared(name);
        loop {
            let lines = std::fs::read_to_string(&path).map_or(0, |text| text.lines().count());
            if lines >= count {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn q(path: &Path) -> String {
    format!("'{}'", path.display())
}

#[tokio::test]
async fn a_build_writing_several_files_gives_one_update_once_it_has_finished() {
    let project = Project::new();
    let server = project.serve(false).await;
    let (mut page, _) = Client::connect(&server).await;
    let root = server.root.path();
    let done = project.shared("done");
    // Three files a fifth of a second apart: a batcher alone would send them one by one.
    project.script(&format!(
        "echo '<p>a</p>' > {a}\nsleep 0.2\necho 'body{{}}' > {b}\nsleep 0.2\necho 'x()' > {c}\ntouch {done}\n",
        a = q(&root.join("a.html")),
        b = q(&root.join("b.css")),
        c = q(&root.join("c.js")),
        done = q(&done),
    ));
    let message = page.next().await;
    assert!(done.exists(), "the update came after the run ended");
    let mut named = paths(&message);
    named.sort();
    assert_eq!(named, ["/a.html", "/b.css", "/c.js"], "{message:?}");
    page.assert_nothing_before_sentinel(root).await;
    server.stop().await;
}

#[tokio::test]
async fn a_failed_build_shows_in_every_page_until_a_build_succeeds() {
    let project = Project::new();
    let server = project.serve(false).await;
    let (mut page, _) = Client::connect(&server).await;
    let root = server.root.path();
    project.script(&format!(
        "echo 'half' > {half}\necho 'compiling <main>'\necho '\x1b[31merror\x1b[0m: <b>bad</b>' >&2\nexit 3\n",
        half = q(&root.join("half.html")),
    ));
    let ServerMessage::Build {
        failure: Some(failure),
    } = page.next().await
    else {
        panic!("the failure");
    };
    assert!(failure.command.starts_with("sh "), "{failure:?}");
    assert_eq!(failure.status, "exit status 3");
    assert!(
        failure.output.contains("compiling <main>\n")
            && failure.output.contains("error: <b>bad</b>"),
        "colours stripped, text as written: {:?}",
        failure.output
    );
    // `liveserve wait` says so at once (exit 1), with no page that reports what it shows.
    let waited = crate::control::wait_command(&server, "5").await.unwrap();
    assert_eq!(waited.status.code(), Some(1), "{waited:?}");
    // A page opened now learns of it at once.
    let (_, hello) = Client::connect(&server).await;
    let ServerMessage::Hello { build, .. } = hello else {
        panic!("hello");
    };
    assert_eq!(build.as_ref(), Some(&failure));
    // Fixed: the failure goes, and what both runs wrote comes as one update.
    project.script(&format!("echo 'whole' > {}\n", q(&root.join("whole.html"))));
    assert_eq!(page.next().await, ServerMessage::Build { failure: None });
    let mut named = paths(&page.next().await);
    named.sort();
    assert_eq!(named, ["/half.html", "/whole.html"]);
    let (_, hello) = Client::connect(&server).await;
    assert!(matches!(hello, ServerMessage::Hello { build: None, .. }));
    server.stop().await;
}

#[tokio::test]
async fn changes_during_a_run_queue_exactly_one_more_run() {
    let project = Project::new();
    let server = project.serve(false).await;
    let (mut page, _) = Client::connect(&server).await;
    let (log, gate) = (project.shared("runs.log"), project.shared("gate"));
    std::fs::write(&gate, "closed").unwrap();
    project.script(&format!(
        "echo run >> {log}\nwhile [ -f {gate} ]; do sleep 0.02; done\ndate +%s%N > {stamp}\n",
        log = q(&log),
        gate = q(&gate),
        stamp = q(&server.root.path().join("stamp.txt")),
    ));
    project.wait_for_lines("runs.log", 1).await;
    // Three more changes while it runs.
    for note in ["one", "two", "three"] {
        write(project.sources.path(), "notes.txt", note.as_bytes());
    }
    std::fs::remove_file(&gate).unwrap();
    assert_eq!(paths(&page.next().await), ["/stamp.txt"]);
    assert_eq!(paths(&page.next().await), ["/stamp.txt"]);
    project.wait_for_lines("runs.log", 2).await;
    page.assert_nothing_before_sentinel(server.root.path())
        .await;
    project.wait_for_lines("runs.log", 2).await;
    server.stop().await;
}

#[tokio::test]
async fn with_exec_restart_a_change_restarts_a_command_that_keeps_running() {
    let project = Project::new();
    let server = project.serve(true).await;
    let pids = project.shared("pids");
    project.script(&format!("echo $$ >> {}\nexec sleep 600\n", q(&pids)));
    project.wait_for_lines("pids", 1).await;
    write(project.sources.path(), "notes.txt", b"again");
    project.wait_for_lines("pids", 2).await;
    let first: u32 = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The first one was stopped (and reaped), not left running beside the second.
    let gone = async {
        while Path::new(&format!("/proc/{first}")).exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(TIMEOUT, gone)
        .await
        .expect("the first run was stopped");
    // Stopping the server stops the running one too.
    let second: u32 = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    server.stop().await;
    let gone = async {
        while Path::new(&format!("/proc/{second}")).exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(TIMEOUT, gone)
        .await
        .expect("stopping the server stopped the command");
}

#[tokio::test]
async fn a_restarted_backend_reloads_the_pages_once_its_port_answers() {
    let project = Project::new();
    let backend = site(&[("api/index.html", b"<p>backend</p>")]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The backend is another liveserve: a server that keeps running until stopped.
    project.script(&format!(
        "exec '{}' {} --port {port} -q --no-reload\n",
        env!("CARGO_BIN_EXE_liveserve"),
        q(backend.path()),
    ));
    let root = site(&[("index.html", b"<p>front</p>")]);
    let (sources, script) = (
        project.sources.path().to_path_buf(),
        project.sources.path().join("build.sh"),
    );
    let server = TestServer::start_with(root, move |config| {
        config.watch = vec![sources];
        config.exec = Some(format!("sh '{}'", script.display()));
        config.exec_restart = true;
        config.proxies = vec![format!("/api=http://127.0.0.1:{port}").parse().unwrap()];
    })
    .await;
    // Up, and told: nothing is pending any more.
    let settled = async {
        loop {
            let status = server.get("/__liveserve/status").await.text();
            if status.contains(r#""pending":false"#) && server.get("/api/").await.status == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(TIMEOUT, settled)
        .await
        .expect("the backend came up");
    let (mut page, _) = Client::connect(&server).await;
    write(project.sources.path(), "notes.txt", b"restart");
    let message = page.next().await;
    assert!(
        matches!(message, ServerMessage::Reload { all: true, .. }),
        "{message:?}"
    );
    assert_eq!(
        server.get("/api/").await.status,
        200,
        "up when the pages reload"
    );
    page.assert_nothing_before_sentinel(server.root.path())
        .await;
    server.stop().await;
}

#[tokio::test]
async fn exec_without_sources_runs_once_and_then_lets_changes_through() {
    let shared = tempfile::tempdir().unwrap();
    let (gate, built) = (shared.path().join("gate"), shared.path().join("built"));
    std::fs::write(&gate, "closed").unwrap();
    let root = site(&[("index.html", b"<p>first</p>")]);
    let output = root.path().join("out.txt");
    let command = format!(
        "while [ -f {gate} ]; do sleep 0.02; done; echo built > {out}; touch {built}",
        gate = q(&gate),
        out = q(&output),
        built = q(&built),
    );
    let server = TestServer::start_with(root, move |config| config.exec = Some(command)).await;
    let (mut page, _) = Client::connect(&server).await;
    std::fs::remove_file(&gate).unwrap();
    // The run is not cut short for want of sources: it finishes and its output is told once.
    assert_eq!(paths(&page.next().await), ["/out.txt"]);
    assert!(built.exists());
    // Afterwards, saves in the folder reach the pages as usual.
    page.assert_nothing_before_sentinel(server.root.path())
        .await;
    server.stop().await;
}

#[tokio::test]
async fn a_failure_with_a_huge_line_of_output_still_reaches_the_pages() {
    let project = Project::new();
    let server = project.serve(false).await;
    let (mut page, _) = Client::connect(&server).await;
    // 200 KB on one line (a minified bundle in an error message), then the real error.
    project.script("head -c 200000 /dev/zero | tr '\\0' x\necho\necho 'the error'\nexit 1\n");
    let ServerMessage::Build {
        failure: Some(failure),
    } = page.next().await
    else {
        panic!("the failure");
    };
    assert!(
        failure.output.len() <= 16 * 1024,
        "{}",
        failure.output.len()
    );
    assert!(
        failure.output.ends_with("the error\n"),
        "the end of the output is kept"
    );
    // And a page connecting now gets it in its hello.
    let (_, hello) = Client::connect(&server).await;
    assert!(matches!(hello, ServerMessage::Hello { build: Some(_), .. }));
    server.stop().await;
}

/// `liveserve dist --watch . --exec 'npm run build'`: the build writes into the served folder,
/// which is inside its sources. That folder is left out of the sources, so a run does not start
/// the next one.
#[tokio::test]
async fn a_served_folder_inside_the_sources_does_not_run_the_build_again() {
    let project = Project::new();
    let sources = project.sources.path();
    write(sources, "dist/index.html", b"<html><body>x</body></html>");
    write(sources, "src/page.txt", b"one");
    project.copying_build(
        &sources.join("src/page.txt"),
        &sources.join("dist/page.txt"),
    );
    let dist = sources.join("dist");
    let server = project.serve_with(move |config| config.root = dist).await;
    project.wait_for_lines("runs.log", 1).await;
    write(sources, "src/page.txt", b"two");
    project.wait_for_lines("runs.log", 2).await;
    assert_eq!(server.get("/page.txt").await.text(), "two");
    project.assert_lines_stay("runs.log", 2).await;
    server.stop().await;
}

/// A build that writes into its sources outside the served folder runs itself again for ever
/// (here as `rm -rf out && tsc` does: a folder removed and made again, which keeps its batch
/// open longer than the run's settle time): the real binary says so on stderr after five runs
/// in a row. It also says at start that the served folder inside the sources is left out.
#[test]
fn a_build_that_keeps_running_itself_again_is_pointed_out() {
    let project = Project::new();
    let sources = project.sources.path();
    write(sources, "dist/index.html", b"<p>x</p>");
    project.script(&format!(
        "rm -rf {out}\nmkdir {out}\necho built > {out}/app.js\n",
        out = q(&sources.join("out"))
    ));
    let seen = stderr_until_loop_is_pointed_out(sources, &[]);
    let dist = sources.canonicalize().unwrap().join("dist");
    assert!(
        seen.iter()
            .any(|line| line.contains(&format!("leaving out {}", dist.display()))),
        "{seen:#?}"
    );
}

/// The same for `--exec-restart`: a backend that writes into its sources as it starts.
#[test]
fn a_backend_that_keeps_restarting_itself_is_pointed_out() {
    let project = Project::new();
    let sources = project.sources.path();
    write(sources, "dist/index.html", b"<p>x</p>");
    project.script(&format!(
        "echo started > {}\nexec sleep 100\n",
        q(&sources.join("backend.log"))
    ));
    stderr_until_loop_is_pointed_out(sources, &["--exec-restart"]);
}

/// Runs the real binary serving `sources/dist` with `sh build.sh` as its command and `sources`
/// as its sources, until it says the command keeps running itself again; asserts that it said
/// so after five runs, not before. Returns what it printed on stderr.
fn stderr_until_loop_is_pointed_out(sources: &Path, flags: &[&str]) -> Vec<String> {
    let mut command = liveserve();
    command
        .arg(sources.join("dist"))
        .args(["--port", "0", "--exec", "sh build.sh", "--watch"])
        .arg(sources)
        .args(flags)
        .current_dir(sources);
    let mut running = Running::start(command);
    let mut stderr = Stderr::of(&mut running, TIMEOUT);
    stderr.until("runs in a row");
    let seen = stderr.seen;
    let runs = seen
        .iter()
        .filter(|line| line.contains("running sh build.sh"))
        .count();
    assert!(runs >= 5, "told after five runs, not {runs}: {seen:#?}");
    assert!(
        seen.last()
            .is_some_and(|line| line.contains("if the command writes into a --watch folder")),
        "{seen:#?}"
    );
    // Stopped as a user does, so it stops the command too.
    running.terminate();
    seen
}

/// Tailwind reads the pages it styles, which are in the served folder inside its sources: an
/// edit there while no run is under way runs the build, and the page gets one update for the
/// edit and what the run wrote.
#[tokio::test]
async fn an_edit_in_a_served_folder_the_build_reads_runs_it_once_with_one_update() {
    let project = Project::new();
    let sources = project.sources.path();
    write(sources, "dist/index.html", b"<html><body>x</body></html>");
    project.script(&format!(
        "echo >> {started}\nwc -c < {page} > {size}\necho run >> {log}\n",
        started = q(&project.shared("started")),
        page = q(&sources.join("dist/index.html")),
        size = q(&sources.join("dist/size.txt")),
        log = q(&project.shared("runs.log")),
    ));
    let dist = sources.join("dist");
    let server = project.serve_with(move |config| config.root = dist).await;
    project.wait_for_lines("runs.log", 1).await;
    // An edit while the run at start is still settling goes out with it, without a run.
    wait_until_settled(&server).await;
    let (mut page, _) = Client::connect(&server).await;
    let dist = sources.join("dist");
    let edited = b"<html><body>a longer page</body></html>";
    write(&dist, "index.html", edited);
    let mut named = paths(&page.next().await);
    named.sort();
    assert_eq!(named, ["/index.html", "/size.txt"]);
    project.wait_for_lines("runs.log", 2).await;
    let size = server.get("/size.txt").await.text();
    assert_eq!(
        size.trim(),
        edited.len().to_string(),
        "the run read the edit"
    );
    project.assert_lines_stay("runs.log", 2).await;
    // (The sentinel is an edit there too: it runs the build, which changes nothing else.)
    page.assert_nothing_before_sentinel(&dist).await;
    server.stop().await;
}

/// A run that copies files keeping their old times (`cp -a`, `rsync -a`, a site generator
/// copying static files) into the served folder inside its sources: its copies, seen as it
/// settles, are the build's (they changed during the run), not the user's edits that an old
/// time would suggest; the build does not run again and again. An edit after it still does.
#[tokio::test]
async fn a_runs_copies_that_keep_an_old_time_do_not_run_it_again() {
    let project = Project::new();
    let sources = project.sources.path();
    write(sources, "dist/index.html", b"<html><body>x</body></html>");
    let font = project.shared("font.woff");
    std::fs::write(&font, "font").unwrap();
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&font)
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    project.script(&format!(
        "echo >> {started}\necho run >> {log}\ncp -p {font} {dist}/font.woff\n",
        started = q(&project.shared("started")),
        log = q(&project.shared("runs.log")),
        font = q(&font),
        dist = q(&sources.join("dist")),
    ));
    let dist = sources.join("dist");
    let server = project.serve_with(move |config| config.root = dist).await;
    project.wait_for_lines("runs.log", 1).await;
    project.assert_lines_stay("runs.log", 1).await;
    write(
        sources,
        "dist/index.html",
        b"<html><body>edited</body></html>",
    );
    project.wait_for_lines("runs.log", 2).await;
    project.assert_lines_stay("runs.log", 2).await;
    server.stop().await;
}

/// A page the user edited before, edited again while a run is under way (the run read it
/// before that edit): the build runs once more after it, and reads the new page. What the
/// build writes there does not run it again.
#[tokio::test]
async fn a_page_edited_again_during_a_run_runs_the_build_once_more() {
    edit_during_a_run("index.html").await;
}

/// Tailwind's case: index.html saved, then about.html while the run for it is under way (its
/// first edit, a page like the one edited before): the build runs once more and reads it.
#[tokio::test]
async fn another_page_edited_during_a_run_runs_the_build_once_more() {
    edit_during_a_run("about.html").await;
}

/// Edits index.html between runs, then `page` while the run for that edit is under way, past
/// the point where the build read the pages; the build must run once more, and only once.
async fn edit_during_a_run(page: &str) {
    let project = Project::new();
    let sources = project.sources.path();
    write(sources, "dist/index.html", b"<html><body>x</body></html>");
    write(sources, "dist/about.html", b"<html><body>y</body></html>");
    let gate = project.shared("gate");
    std::fs::write(&gate, "").unwrap();
    // The build reads the pages, then waits at the gate, then writes what it read.
    project.script(&format!(
        "echo >> {started}\ncat {dist}/*.html | wc -c > {read}\necho run >> {log}\nwhile [ ! -e {gate} ]; do sleep 0.01; done\ncp {read} {size}\n",
        started = q(&project.shared("started")),
        dist = q(&sources.join("dist")),
        read = q(&project.shared("read")),
        log = q(&project.shared("runs.log")),
        gate = q(&gate),
        size = q(&sources.join("dist/size.txt")),
    ));
    let dist = sources.join("dist");
    let server = project.serve_with(move |config| config.root = dist).await;
    project.wait_for_lines("runs.log", 1).await;
    wait_until_settled(&server).await;
    let dist = sources.join("dist");
    std::fs::remove_file(&gate).unwrap();
    write(&dist, "index.html", b"<html><body>edited</body></html>");
    project.wait_for_lines("runs.log", 2).await;
    // The run has read the pages: one is edited before the run ends.
    write(
        &dist,
        page,
        b"<html><body>edited during the run</body></html>",
    );
    std::fs::write(&gate, "").unwrap();
    project.wait_for_lines("runs.log", 3).await;
    wait_until_settled(&server).await;
    let total: usize = ["index.html", "about.html"]
        .iter()
        .map(|name| std::fs::read(dist.join(name)).unwrap().len())
        .sum();
    let size = server.get("/size.txt").await.text();
    assert_eq!(size.trim(), total.to_string(), "the last run read it");
    project.assert_lines_stay("runs.log", 3).await;
    server.stop().await;
}

/// `liveserve . --watch . --exec 'sass style.scss style.css'`: the output beside its source, in
/// a folder that is both served and the sources. An edit runs the build once, with one update,
/// and what the build writes does not run it again.
#[tokio::test]
async fn a_build_writing_beside_its_sources_in_the_served_folder_runs_once_per_edit() {
    let project = Project::new();
    let sources = project.sources.path();
    write(sources, "style.scss", b"a {}");
    project.copying_build(&sources.join("style.scss"), &sources.join("style.css"));
    let root = sources.to_path_buf();
    let server = project.serve_with(move |config| config.root = root).await;
    project.wait_for_lines("runs.log", 1).await;
    wait_until_settled(&server).await;
    let (mut page, _) = Client::connect(&server).await;
    write(sources, "style.scss", b"b {}");
    let mut named = paths(&page.next().await);
    named.sort();
    assert_eq!(named, ["/style.css", "/style.scss"]);
    project.wait_for_lines("runs.log", 2).await;
    assert_eq!(server.get("/style.css").await.text(), "b {}");
    project.assert_lines_stay("runs.log", 2).await;
    server.stop().await;
}

/// `liveserve . --watch src --exec 'esbuild src/app.ts --outfile=app.js'`: the sources inside
/// the served folder are seen by both watchers; a save there is one update, after the run, with
/// the source and the output together.
#[tokio::test]
async fn a_save_in_sources_inside_the_served_folder_is_one_update_after_the_run() {
    let project = Project::new();
    let served = project.sources.path();
    write(served, "index.html", b"<p>x</p>");
    write(served, "src/app.js", b"1");
    project.copying_build(&served.join("src/app.js"), &served.join("app.js"));
    let (root, sources) = (served.to_path_buf(), served.join("src"));
    let server = project
        .serve_with(move |config| {
            config.root = root;
            config.watch = vec![sources];
        })
        .await;
    project.wait_for_lines("runs.log", 1).await;
    wait_until_settled(&server).await;
    let (mut page, _) = Client::connect(&server).await;
    write(served, "src/app.js", b"2");
    let mut named = paths(&page.next().await);
    named.sort();
    assert_eq!(named, ["/app.js", "/src/app.js"]);
    project.wait_for_lines("runs.log", 2).await;
    assert_eq!(server.get("/app.js").await.text(), "2");
    page.assert_nothing_before_sentinel(served).await;
    server.stop().await;
}

/// A fresh checkout has no output folder yet (`liveserve dist --exec 'npm run build'`): it is
/// made, said so, and served once the command has filled it.
#[test]
fn a_missing_output_folder_is_made_for_the_command_to_fill() {
    let project = tempfile::tempdir().unwrap();
    let dist = project.path().join("dist");
    let build = format!(
        "echo '<p>built</p>' > {}; echo done",
        q(&dist.join("index.html"))
    );
    let mut command = liveserve();
    command.arg(&dist).args(["--port", "0", "--exec", &build]);
    let mut running = Running::start(command);
    let mut stderr = Stderr::of(&mut running, TIMEOUT);
    let port = crate::cli::port_of(running.lines_until_url().last().unwrap());
    stderr.until("[exec] done");
    stderr.until("did not exist: made it");
    assert!(crate::cli::http_get(port, "/").contains("<p>built</p>"));
}

/// A start that fails after the output folder was made leaves nothing behind, and an output
/// folder whose parent is missing (a mistyped path) is an error, not made.
#[test]
fn a_failed_start_leaves_no_output_folder_behind() {
    let project = tempfile::tempdir().unwrap();
    let dist = project.path().join("dist");
    let output = liveserve()
        .arg(&dist)
        .args(["--port", "0", "--exec", "true", "--watch"])
        .arg(project.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(!dist.exists(), "the folder made for the output is removed");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!said.contains("made it"), "nothing was made: {said}");
    let mistyped = project.path().join("dsit").join("out");
    let output = liveserve()
        .arg(&mistyped)
        .args(["--port", "0", "--exec", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(!project.path().join("dsit").exists());
}

/// A command that never exits (`sass --watch`) in place of a build: the real binary says, after
/// 10 s, that the pages get its output only once it exits, and what to use instead.
#[test]
fn a_build_that_does_not_exit_is_pointed_out() {
    let root = site(&[("index.html", b"<p>x</p>")]);
    let mut command = liveserve();
    command
        .arg(root.path())
        .args(["--port", "0", "--exec", "sleep 60"]);
    let mut running = Running::start(command);
    // Said after 10 s: the deadline allows for that.
    let mut stderr = Stderr::of(&mut running, Duration::from_secs(10) + TIMEOUT);
    let said = stderr.until("still running after 10 s");
    assert!(said.contains("give --exec-restart"), "{said}");
    // Stopped as a user does, so it stops the command too.
    running.terminate();
}

/// The real binary's stderr tells a build that succeeds after a failure, and with `-v` what its
/// run sent the pages (as for any change; before, only that changes were held).
#[test]
fn a_build_that_succeeds_again_is_told_and_with_v_what_the_pages_got() {
    let project = Project::new();
    let sources = project.sources.path();
    write(sources, "dist/index.html", b"<p>x</p>");
    project.script("echo broken; exit 1\n");
    let mut command = liveserve();
    command
        .arg(sources.join("dist"))
        .args(["--port", "0", "-v", "--exec", "sh build.sh", "--watch"])
        .arg(sources)
        .current_dir(sources);
    let mut running = Running::start(command);
    let mut stderr = Stderr::of(&mut running, TIMEOUT);
    stderr.until("exit status 1");
    project.script(&format!(
        "echo fixed > {}\n",
        q(&sources.join("dist/fixed.txt"))
    ));
    stderr.until("sh build.sh: succeeded again");
    let done = stderr.until("sh build.sh done → ");
    assert!(done.contains(r#""/fixed.txt""#), "{done}");
    running.terminate();
}

/// A running binary's stderr, read until the lines a test waits for, by one deadline.
struct Stderr {
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    deadline: Instant,
}

impl Stderr {
    fn of(running: &mut Running, within: Duration) -> Stderr {
        Stderr {
            lines: stderr_lines(running),
            seen: Vec::new(),
            deadline: Instant::now() + within,
        }
    }

    /// The first line (read now or before) that contains `needle`.
    fn until(&mut self, needle: &str) -> String {
        loop {
            if let Some(line) = self.seen.iter().find(|line| line.contains(needle)) {
                return line.clone();
            }
            let line = self
                .lines
                .recv_timeout(self.deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no {needle:?} on stderr: {:#?}", self.seen));
            self.seen.push(line);
        }
    }
}

/// Waits until the server says no run is under way and no change is on its way.
async fn wait_until_settled(server: &TestServer) {
    let settled = async {
        while !server
            .get("/__liveserve/status")
            .await
            .text()
            .contains(r#""pending":false"#)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(TIMEOUT, settled)
        .await
        .expect("the run at start settled");
}
