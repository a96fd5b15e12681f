//! Running out of things, through the real binary: with its open-file limit lowered (`prlimit`)
//! and used up by idle connections, liveserve waits instead of spinning (its CPU time stays low),
//! says so once, and serves again as soon as descriptors free.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::cli::{Running, liveserve_under, port_of, stderr_lines};
use crate::support::{TIMEOUT, site};

/// The process's CPU time so far (user and system), from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no memory effects.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

#[test]
fn out_of_descriptors_it_waits_says_so_once_and_recovers() {
    let root = site(&[("index.html", b"<p>home</p>")]);
    let mut command = liveserve_under(&["prlimit", "--nofile=64:64"]);
    command
        .arg(root.path())
        .args(["--port", "0", "--no-reload"]);
    let mut running = Running::start(command);
    let port = port_of(&running.lines_until_url().pop().unwrap());
    let stderr = stderr_lines(&mut running);
    let pid = running.child.id();

    // Idle connections until the server holds every descriptor it may have, and more waiting.
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let said = stderr
        .recv_timeout(TIMEOUT)
        .expect("liveserve says it cannot accept");
    assert!(said.contains("cannot accept connections"), "{said}");
    let before = cpu_time(pid);
    let started = Instant::now();
    // A second of failing to accept: a busy loop would burn most of it.
    std::thread::sleep(Duration::from_secs(1));
    let burnt = cpu_time(pid) - before;
    assert!(
        burnt < started.elapsed() / 5,
        "{burnt:?} of CPU in {:?} while out of descriptors",
        started.elapsed()
    );
    // Descriptors free: served again, and said once.
    drop(idle);
    let served = (|| {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            let mut answer = String::new();
            if stream.write_all(request).is_ok() && stream.read_to_string(&mut answer).is_ok() {
                return Some(answer);
            }
        }
        None
    })();
    assert!(
        served.is_some_and(|answer| answer.starts_with("HTTP/1.1 200")),
        "served again"
    );
    let next = stderr
        .recv_timeout(TIMEOUT)
        .expect("and says it accepts again");
    assert!(
        next.contains("accepting connections again"),
        "said once, then this: {next}"
    );
    let (status, _) = running.terminate();
    assert_eq!(status.code(), Some(0));
}
