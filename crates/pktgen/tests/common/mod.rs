//! Helpers shared by the multi-process tests: the real ptvmm-pktgen and ptvmm-vale-ctl
//! binaries started on a switch in a private directory (PTVMM_SHM_DIR), their output read
//! line by line, their exit awaited with a deadline, and the directory's files listed.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vale::fuzzing::TempDir;

pub const PKTGEN: &str = env!("CARGO_BIN_EXE_ptvmm-pktgen");
pub const VALECTL: &str = env!("CARGO_BIN_EXE_ptvmm-vale-ctl");
pub const DEADLINE: Duration = Duration::from_secs(40);

/// A child process with its stdout and stderr read line by line.
pub struct Proc {
    pub child: Child,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: mpsc::Receiver<String>,
}

/// The lines of `r`, read on a thread of their own.
pub fn lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Starts `bin` with `args` and its switches in `dir`.
pub fn spawn(bin: &str, dir: &TempDir, args: &[&str]) -> Proc {
    let mut child = Command::new(bin)
        .args(args)
        .env("PTVMM_SHM_DIR", &dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    Proc {
        child,
        stdout,
        stderr,
    }
}

/// Starts pkt-gen and waits until its port is open: its "ready" line (returned too).
pub fn pktgen_ready(dir: &TempDir, args: &[&str]) -> (Proc, String) {
    let p = spawn(PKTGEN, dir, args);
    let l = p
        .stderr
        .recv_timeout(DEADLINE)
        .expect("pkt-gen never became ready");
    assert!(l.contains("ready"), "unexpected first line: {l}");
    (p, l)
}

/// Starts pkt-gen and waits until its port is open.
pub fn pktgen(dir: &TempDir, args: &[&str]) -> Proc {
    pktgen_ready(dir, args).0
}

/// Waits for `child` to exit (killing it after the deadline); returns its status.
pub fn wait_exit(child: &mut Child) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not finish in time", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sends a signal to our own child process; no memory is involved.
        unsafe { libc::kill(self.pid(), sig) };
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for exit (killing the child after the deadline); returns (status, stdout).
    pub fn finish(self) -> (i32, String) {
        let (code, out, _) = self.finish_with_stderr();
        (code, out)
    }

    /// Waits for exit (killing the child after the deadline); returns (status, stdout,
    /// stderr).
    pub fn finish_with_stderr(mut self) -> (i32, String, String) {
        let code = wait_exit(&mut self.child);
        std::thread::sleep(Duration::from_millis(20));
        let out: Vec<String> = self.stdout.try_iter().collect();
        let err: Vec<String> = self.stderr.try_iter().collect();
        (code, out.join("\n"), err.join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// vale-ctl that must succeed; returns its stdout.
pub fn vale_ctl(dir: &TempDir, args: &[&str]) -> String {
    let (code, out, err) = spawn(VALECTL, dir, args).finish_with_stderr();
    assert_eq!(code, 0, "vale-ctl {args:?} failed: {out}{err}");
    out
}

/// The columns of port `name`'s row in a vale-ctl listing.
pub fn port_fields(listing: &str, name: &str) -> Option<Vec<String>> {
    listing
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
}

/// Waits for a sender and its receiver, which must both succeed: `n` frames sent, `n`
/// received and verified good; with `bytes`, both summaries must also say that many bytes.
/// Returns (sender's, receiver's) stdout; `what` labels a failure.
pub fn exchange(tx: Proc, rx: Proc, n: u64, bytes: Option<u64>, what: &str) -> (String, String) {
    let (code, tout) = tx.finish();
    assert_eq!(code, 0, "{what}: {tout}");
    assert_eq!(count(&tout, "Sent"), n, "{what}: {tout}");
    let (code, rout) = rx.finish();
    assert_eq!(code, 0, "{what}: {rout}");
    assert_eq!(count(&rout, "Received"), n, "{what}: {rout}");
    assert!(
        rout.contains(&format!("Verified {n} good 0 bad")),
        "{what}: {rout}"
    );
    if let Some(b) = bytes {
        let (sent, got) = (
            format!("Sent {n} packets {b} bytes "),
            format!("Received {n} packets {b} bytes "),
        );
        assert!(tout.contains(&sent), "{what}: {tout}");
        assert!(rout.contains(&got), "{what}: {rout}");
    }
    (tout, rout)
}

/// The packet count of the `Sent|Received N packets` line.
pub fn count(out: &str, verb: &str) -> u64 {
    let l = out
        .lines()
        .find(|l| l.starts_with(verb))
        .unwrap_or_else(|| panic!("no {verb} line in:\n{out}"));
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The names of the files in `dir`.
pub fn files(dir: &TempDir) -> Vec<String> {
    std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Waits until `cond` holds, failing the test after the deadline.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The integer field `key` of a one-line JSON object.
pub fn field(obj: &str, key: &str) -> Option<u64> {
    let pat = format!("\"{key}\":");
    let rest = &obj[obj.find(&pat)? + pat.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Checks that every line is one JSON object with a type; returns the summary line.
pub fn json_summary(out: &str) -> String {
    for l in out.lines() {
        assert!(
            l.starts_with("{\"type\":\"") && l.ends_with('}'),
            "not a JSON line: {l}"
        );
    }
    let s: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("{\"type\":\"summary\""))
        .collect();
    assert_eq!(s.len(), 1, "one summary in:\n{out}");
    s[0].to_string()
}
