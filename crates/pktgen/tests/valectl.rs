//! Multi-process tests of ptvmm-vale-ctl's listing as JSON, `top` (on a pseudo-terminal and
//! on a pipe) and persistent ports, with the real binaries on a switch in a private directory
//! (PTVMM_SHM_DIR), one directory and switch name per test.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vale::fuzzing::TempDir;

mod common;
use common::{
    files, pktgen, port_fields, spawn, vale_ctl, wait_exit, wait_for, Proc, DEADLINE, PKTGEN,
    VALECTL,
};

/// vale-ctl that must fail: exit 2 and one line on stderr, returned.
fn vale_ctl_fails(dir: &TempDir, args: &[&str]) -> String {
    let (code, out, err) = spawn(VALECTL, dir, args).finish_with_stderr();
    assert_eq!(code, 2, "vale-ctl {args:?}: {out}{err}");
    assert_eq!(err.lines().count(), 1, "vale-ctl {args:?}: {err}");
    assert!(err.starts_with("ptvmm-vale-ctl: "), "{err}");
    err
}

#[test]
fn no_argument_lists_like_list_and_json_is_one_document() {
    let d = TempDir::new("vc-json");
    assert_eq!(vale_ctl(&d, &[]), "no switches");
    assert_eq!(vale_ctl(&d, &["list", "--json"]), r#"{"switches":[]}"#);
    let rx = pktgen(&d, &["-i", "valevj:rx", "-f", "rx"]);
    vale_ctl(&d, &["create", "valevj:keep"]);
    let plain = vale_ctl(&d, &[]);
    assert_eq!(plain, vale_ctl(&d, &["list"]));
    assert!(plain.contains("valevj: 2 port(s)"), "{plain}");
    let f = port_fields(&plain, "valevj:keep").unwrap();
    assert_eq!(
        (f[2].as_str(), f[3].as_str(), f[12].as_str()),
        ("-", "idle", "yes")
    );
    let f = port_fields(&plain, "valevj:rx").unwrap();
    assert_eq!(f[2], rx.child.id().to_string());
    assert_eq!((f[3].as_str(), f[12].as_str()), ("alive", "no"));

    let json = vale_ctl(&d, &["list", "--json", "valevj"]);
    assert_eq!(json.lines().count(), 1, "{json}");
    assert!(
        json.starts_with(r#"{"switches":[{"name":"valevj","ports":[{"index":"#),
        "{json}"
    );
    assert!(json.ends_with(r#""uplinks":[]}]}"#), "{json}");
    assert!(
        json.contains(r#""name":"valevj:keep","owner":null,"state":"idle","persistent":true"#),
        "{json}"
    );
    let me = format!(
        r#""name":"valevj:rx","owner":{},"state":"alive","persistent":false,"lossless":false"#,
        rx.child.id()
    );
    assert!(json.contains(&me), "{json}");
    assert_eq!(
        json,
        vale_ctl(&d, &["list", "--json"]),
        "one switch or all: the same here"
    );
    vale_ctl_fails(&d, &["list", "--json", "no/such"]);
    vale_ctl_fails(&d, &["list", "nosuch", "--json"]);
    drop(rx);
    vale_ctl(&d, &["remove", "valevj:keep"]);
}

#[test]
fn a_persistent_port_outlives_its_openers_even_killed_ones() {
    let d = TempDir::new("vc-pers");
    let out = vale_ctl(&d, &["-n", "valevp:keep"]);
    assert!(out.contains("created persistent port valevp:keep"), "{out}");
    assert_eq!(files(&d).len(), 2, "{:?}", files(&d));
    vale_ctl_fails(&d, &["create", "valevp:keep"]);

    // An opener attaches to it and receives; removing it meanwhile is refused.
    let rx = pktgen(&d, &["-i", "valevp:keep", "-f", "rx"]);
    let tx = pktgen(
        &d,
        &["-i", "valevp:tx", "-f", "tx", "-n", "3000", "-R", "100000"],
    );
    let (code, _) = tx.finish();
    assert_eq!(code, 0);
    let err = vale_ctl_fails(&d, &["-r", "valevp:keep"]);
    assert!(
        err.contains(&format!("in use by process {}", rx.child.id())),
        "{err}"
    );
    let l = vale_ctl(&d, &["list"]);
    let f = port_fields(&l, "valevp:keep").unwrap();
    assert_eq!((f[3].as_str(), f[12].as_str()), ("alive", "yes"), "{l}");
    assert_eq!(f[9], "3000", "{l}");
    rx.signal(libc::SIGKILL);
    let _ = rx.finish();

    // Killed: still there, its files too, and the next opener takes it over.
    assert_eq!(files(&d).len(), 2, "{:?}", files(&d));
    let l = vale_ctl(&d, &["list"]);
    assert_eq!(port_fields(&l, "valevp:keep").unwrap()[3], "dead", "{l}");
    let rx = pktgen(&d, &["-i", "valevp:keep", "-f", "rx"]);
    let l = vale_ctl(&d, &["list"]);
    let f = port_fields(&l, "valevp:keep").unwrap();
    assert_eq!(f[2], rx.child.id().to_string(), "{l}");
    assert_eq!(f[9], "3000", "counters span openers: {l}");
    // A second opener is refused while the first has it.
    let (code, _, err) = spawn(PKTGEN, &d, &["-i", "valevp:keep", "-f", "rx"]).finish_with_stderr();
    assert_eq!(code, 2);
    assert!(err.contains("already open by process"), "{err}");
    rx.signal(libc::SIGINT);
    assert_eq!(rx.finish().0, 0);

    // Closed normally: idle; the switch cannot be deleted unasked; removal ends it.
    let l = vale_ctl(&d, &["list"]);
    assert_eq!(port_fields(&l, "valevp:keep").unwrap()[3], "idle", "{l}");
    let err = vale_ctl_fails(&d, &["delete", "valevp"]);
    assert!(err.contains("persistent port valevp:keep"), "{err}");
    let out = vale_ctl(&d, &["remove", "valevp:keep"]);
    assert_eq!(out, "removed valevp:keep");
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let d = TempDir::new("vc-bad");
    for args in [
        vec!["top", "nosuch"],
        vec!["top", "bad/name"],
        vec!["top", "--count", "0"],
        vec!["top", "--count", "x"],
        vec!["create", "vale0"],
        vec!["create", "vale0:a b"],
        vec!["create", "valevb:x", "--rings", "99"],
        vec!["create", "valevb:x", "--slots", "0"],
        vec!["-n"],
        vec!["remove", "valevb:x"],
        vec!["-r", "nothing"],
        vec!["list", "--json", "--bogus"],
        vec!["sideways"],
    ] {
        vale_ctl_fails(&d, &args);
    }
    assert!(files(&d).is_empty(), "{:?}", files(&d));
}

/// A sender and a receiver on switch `sw`, paced so two cores stay usable.
fn traffic(d: &TempDir, sw: &str) -> (Proc, Proc) {
    let rx = pktgen(d, &["-i", &format!("vale{sw}:b"), "-f", "rx"]);
    let tx = pktgen(
        d,
        &["-i", &format!("vale{sw}:a"), "-f", "tx", "-R", "20000"],
    );
    (rx, tx)
}

/// The columns of port `name`'s row in `top` output (escape sequences removed).
fn top_row(text: &str, name: &str) -> Option<Vec<String>> {
    strip_escapes(text)
        .lines()
        .rev()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
}

/// A row whose rx_pps is measured and not zero.
fn has_rate(row: &Option<Vec<String>>) -> bool {
    row.as_ref()
        .is_some_and(|f| f.len() > 4 && f[3] != "-" && f[3] != "0")
}

#[test]
fn top_on_a_pipe_prints_plain_snapshots() {
    let d = TempDir::new("vc-top-pipe");
    let (_rx, _tx) = traffic(&d, "vt");
    let (code, out, err) =
        spawn(VALECTL, &d, &["top", "valevt", "--count", "2"]).finish_with_stderr();
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains('\x1b'),
        "no escape sequences on a pipe: {out:?}"
    );
    assert_eq!(
        out.matches("ptvmm-vale-ctl top: valevt at ").count(),
        2,
        "{out}"
    );
    let row = top_row(&out, "valevt:b");
    assert!(has_rate(&row), "{out}");
    let f = row.unwrap();
    assert_eq!(f.len(), 12, "{f:?}");
    assert!(f[10].ends_with("/1024"), "rx ring occupancy: {f:?}");
}

// --- top on a pseudo-terminal ---

fn check(r: libc::c_int, what: &str) -> libc::c_int {
    assert!(r >= 0, "{what}: {}", std::io::Error::last_os_error());
    r
}

/// A new pseudo-terminal: (master, slave), the slave 50 rows by 200 columns.
fn openpty() -> (OwnedFd, OwnedFd) {
    // SAFETY: posix_openpt takes flags only and returns a new descriptor or -1.
    let m = check(
        unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) },
        "posix_openpt",
    );
    // SAFETY: `m` is a descriptor we just opened and own from here on.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    // SAFETY: grantpt and unlockpt act on the pty master `m`, which is open.
    check(unsafe { libc::grantpt(m) }, "grantpt");
    // SAFETY: unlockpt acts on the pty master `m`, which is open.
    check(unsafe { libc::unlockpt(m) }, "unlockpt");
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: ptsname_r writes a NUL-terminated name of at most name.len() bytes into `name`.
    let r = unsafe { libc::ptsname_r(m, name.as_mut_ptr(), name.len()) };
    assert_eq!(r, 0, "ptsname_r");
    // SAFETY: `name` holds the NUL-terminated path ptsname_r wrote.
    let s = check(
        unsafe { libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) },
        "open the pty slave",
    );
    // SAFETY: `s` is a descriptor we just opened and own from here on.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    let ws = libc::winsize {
        ws_row: 50,
        ws_col: 200,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from `ws`, which lives for the call.
    check(
        unsafe { libc::ioctl(s, libc::TIOCSWINSZ, &ws) },
        "TIOCSWINSZ",
    );
    (master, slave)
}

fn modes(fd: RawFd) -> libc::termios {
    // SAFETY: termios is plain data; all-zero is a valid value to be overwritten.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes one termios into `t`, which lives for the call.
    check(unsafe { libc::tcgetattr(fd, &mut t) }, "tcgetattr");
    t
}

/// The fields of a termios that make up its modes.
fn mode_fields(t: &libc::termios) -> (u32, u32, u32, u32, Vec<u8>) {
    (t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag, t.c_cc.to_vec())
}

/// Reads what the master has within `wait` (nothing if nothing came).
fn read_some(master: RawFd, out: &mut Vec<u8>, wait: Duration) {
    let mut p = libc::pollfd {
        fd: master,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll reads and writes the one pollfd passed, which lives for the call.
    let n = unsafe { libc::poll(&mut p, 1, wait.as_millis() as i32) };
    if n <= 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    // SAFETY: read writes at most buf.len() bytes into `buf`, which lives for the call.
    let r = unsafe { libc::read(master, buf.as_mut_ptr().cast(), buf.len()) };
    if r > 0 {
        out.extend_from_slice(&buf[..r as usize]);
    }
}

fn write_all(fd: RawFd, b: &[u8]) {
    // SAFETY: write reads b.len() bytes from `b`, which lives for the call.
    let r = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
    assert_eq!(r, b.len() as isize, "write to the pty");
}

/// `text` without ANSI escape sequences (CSI and the private `?` modes).
fn strip_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            if it.peek() == Some(&'[') {
                it.next();
                while let Some(&n) = it.peek() {
                    it.next();
                    if n.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum Quit {
    Q,
    CtrlC,
    Sigterm,
    Sigint,
}

/// Runs `top` on a pseudo-terminal with traffic on the switch, waits for a frame showing
/// a measured rate, quits it as `how` says, and checks the exit status and the modes.
fn top_on_a_pty(how: Quit) {
    let sw = match how {
        Quit::Q => "tq",
        Quit::CtrlC => "tc",
        Quit::Sigterm => "tt",
        Quit::Sigint => "ti",
    };
    let d = TempDir::new(&format!("vc-top-{sw}"));
    let (_rx, _tx) = traffic(&d, sw);
    let (master, slave) = openpty();
    let before = modes(slave.as_raw_fd());
    assert!(
        before.c_lflag & libc::ICANON != 0,
        "a new pty is in canonical mode"
    );
    let stdio = || Stdio::from(slave.try_clone().unwrap());
    let mut child = Command::new(VALECTL)
        .args(["top", &format!("vale{sw}")])
        .env("PTVMM_SHM_DIR", &d.0)
        .stdin(stdio())
        .stdout(stdio())
        .stderr(stdio())
        .spawn()
        .expect("spawn");

    let mut out = Vec::new();
    let start = Instant::now();
    let port = format!("vale{sw}:b");
    while !has_rate(&top_row(&String::from_utf8_lossy(&out), &port)) {
        assert!(
            start.elapsed() < DEADLINE,
            "no frame with a rate: {:?}",
            String::from_utf8_lossy(&out)
        );
        assert!(child.try_wait().unwrap().is_none(), "top ended early");
        read_some(master.as_raw_fd(), &mut out, Duration::from_millis(100));
    }
    let text = String::from_utf8_lossy(&out).to_string();
    assert!(
        text.starts_with("\x1b[?1049h"),
        "alternate screen first: {text:?}"
    );
    assert!(
        strip_escapes(&text).contains("q or Ctrl-C quits"),
        "{text:?}"
    );
    let during = modes(slave.as_raw_fd());
    assert_eq!(during.c_lflag & (libc::ICANON | libc::ECHO | libc::ISIG), 0);

    match how {
        Quit::Q => write_all(master.as_raw_fd(), b"q"),
        Quit::CtrlC => write_all(master.as_raw_fd(), &[0x03]),
        // SAFETY: sends a signal to our own child process; no memory is involved.
        Quit::Sigterm => unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        },
        // SAFETY: sends a signal to our own child process; no memory is involved.
        Quit::Sigint => unsafe {
            libc::kill(child.id() as i32, libc::SIGINT);
        },
    }
    let code = wait_exit(&mut child);
    let mut rest = Vec::new();
    read_some(master.as_raw_fd(), &mut rest, Duration::from_millis(200));
    let rest = String::from_utf8_lossy(&rest);
    assert_eq!(code, 0, "{how:?}: {rest:?}");
    assert!(
        rest.contains("\x1b[?1049l"),
        "{how:?}: back to the normal screen: {rest:?}"
    );
    let after = modes(slave.as_raw_fd());
    assert_eq!(
        mode_fields(&after),
        mode_fields(&before),
        "{how:?}: modes restored"
    );
}

#[test]
fn top_on_a_pty_quits_on_q_and_restores_the_terminal() {
    top_on_a_pty(Quit::Q);
}

#[test]
fn top_on_a_pty_quits_on_ctrl_c_and_restores_the_terminal() {
    top_on_a_pty(Quit::CtrlC);
}

#[test]
fn top_on_a_pty_restores_the_terminal_on_sigterm_and_sigint() {
    top_on_a_pty(Quit::Sigterm);
    top_on_a_pty(Quit::Sigint);
}

#[test]
fn top_shows_a_port_that_closes_and_a_switch_that_goes() {
    let d = TempDir::new("vc-top-gone");
    let rx = pktgen(&d, &["-i", "valevg:b", "-f", "rx"]);
    let top = spawn(VALECTL, &d, &["top", "valevg", "--count", "3"]);
    let first = top.stdout.recv_timeout(DEADLINE).expect("a snapshot");
    assert!(first.starts_with("ptvmm-vale-ctl top: valevg"), "{first}");
    rx.signal(libc::SIGINT);
    let _ = rx.finish();
    wait_for("the switch to go", || files(&d).is_empty());
    let (code, out, err) = top.finish_with_stderr();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valevg is gone"), "{out}");
}
