//! Bad input on ptvmm's command line: every case gets a one-line error that names the thing,
//! exit status 2, and no panic or backtrace. These run the real binary.

use std::path::PathBuf;
use std::process::{Command, Output};

fn ptvmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptvmm"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run ptvmm")
}

fn tmp_file(name: &str, data: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ptvmm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// A file with a valid 64-bit bzImage header and nothing to boot behind it.
fn fake_bzimage() -> PathBuf {
    let mut h = vec![0u8; 0x1000];
    h[0x1f1] = 1;
    h[0x202..0x206].copy_from_slice(b"HdrS");
    h[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
    h[0x211] = 1;
    h[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
    h[0x236..0x238].copy_from_slice(&1u16.to_le_bytes());
    tmp_file("bzImage", &h)
}

/// Asserts status 2 and a single stderr line containing every `needle`.
fn assert_bad_input(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "status; stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("ptvmm: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} should mention {n:?}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn missing_kernel_option() {
    assert_bad_input(&ptvmm(&[]), &["--kernel"]);
}

#[test]
fn kernel_file_missing() {
    assert_bad_input(
        &ptvmm(&["--kernel", "/nonexistent/bzImage"]),
        &["/nonexistent/bzImage"],
    );
}

#[test]
fn kernel_not_a_bzimage() {
    let k = tmp_file("not-a-kernel", b"\x7fELF this is not a bzImage");
    assert_bad_input(
        &ptvmm(&["--kernel", k.to_str().unwrap()]),
        &["not a bzImage"],
    );
}

#[test]
fn kernel_is_a_directory() {
    assert_bad_input(&ptvmm(&["--kernel", "/tmp"]), &["/tmp"]);
}

#[test]
fn initrd_unreadable() {
    let k = fake_bzimage();
    let out = ptvmm(&[
        "--kernel",
        k.to_str().unwrap(),
        "--initrd",
        "/nonexistent/initrd",
    ]);
    assert_bad_input(&out, &["initrd", "/nonexistent/initrd"]);
}

#[test]
fn memory_too_small_or_beyond_the_host() {
    let k = fake_bzimage();
    let k = k.to_str().unwrap();
    assert_bad_input(
        &ptvmm(&["--kernel", k, "--memory", "32"]),
        &["--memory", "too small"],
    );
    assert_bad_input(
        &ptvmm(&["--kernel", k, "--memory", "100000000"]),
        &["--memory", "host"],
    );
    assert_bad_input(&ptvmm(&["--kernel", k, "--memory", "lots"]), &["--memory"]);
    assert_bad_input(&ptvmm(&["--kernel", k, "--memory", "-5"]), &["--memory -5"]);
}

#[test]
fn cpu_count_out_of_range() {
    let k = fake_bzimage();
    let k = k.to_str().unwrap();
    assert_bad_input(&ptvmm(&["--kernel", k, "--cpus", "0"]), &["--cpus 0"]);
    assert_bad_input(&ptvmm(&["--kernel", k, "--cpus", "33"]), &["--cpus 33"]);
    assert_bad_input(&ptvmm(&["--kernel", k, "--cpus", "-1"]), &["--cpus"]);
}

#[test]
fn pinning_to_a_cpu_this_host_does_not_give_us() {
    let k = fake_bzimage();
    let k = k.to_str().unwrap();
    assert_bad_input(
        &ptvmm(&["--kernel", k, "--pin-vcpus", "0,99999"]),
        &["--pin-vcpus 99999", "host CPUs"],
    );
    assert_bad_input(
        &ptvmm(&["--kernel", k, "--pin-vcpus", "x"]),
        &["--pin-vcpus"],
    );
}

#[test]
fn bad_netmap_options() {
    let k = fake_bzimage();
    let k = k.to_str().unwrap();
    assert_bad_input(
        &ptvmm(&["--kernel", k, "--netmap", "notvale"]),
        &["--netmap notvale"],
    );
    assert_bad_input(
        &ptvmm(&["--kernel", k, "--netmap", "vale0:1", "--mac", "zz"]),
        &["--mac zz"],
    );
    assert_bad_input(
        &ptvmm(&["--kernel", k, "--mac", "02:00:00:00:00:01"]),
        &["--netmap"],
    );
    assert_bad_input(
        &ptvmm(&[
            "--kernel",
            k,
            "--netmap",
            "vale0:1",
            "--doorbell",
            "carrier-pigeon",
        ]),
        &["--doorbell"],
    );
    assert_bad_input(
        &ptvmm(&["--kernel", k, "--netmap", "vale0:1", "--netmap-rings", "0"]),
        &["--netmap-rings 0"],
    );
    assert_bad_input(
        &ptvmm(&[
            "--kernel",
            k,
            "--netmap",
            "vale0:1",
            "--netmap-tx-spin",
            "10001",
        ]),
        &["--netmap-tx-spin", "10001", "0..=10000"],
    );
    assert_bad_input(
        &ptvmm(&["--kernel", k, "--netmap-tx-spin", "50"]),
        &["--netmap"],
    );
}

/// `--netmap-rings N` gives N TX + N RX rings, and the NIC has kick registers for 32 rings
/// in total: 17 is refused before anything is opened, 16 gets past the check (and here
/// fails on the missing kernel, so no VALE port is created).
#[test]
fn netmap_rings_beyond_the_kick_registers() {
    let k = fake_bzimage();
    assert_bad_input(
        &ptvmm(&[
            "--kernel",
            k.to_str().unwrap(),
            "--netmap",
            "vale0:1",
            "--netmap-rings",
            "17",
        ]),
        &["--netmap-rings 17", "give 1 to 16", "32 rings"],
    );
    let out = ptvmm(&[
        "--kernel",
        "/nonexistent/bzImage",
        "--netmap",
        "vale0:1",
        "--netmap-rings",
        "16",
    ]);
    assert_bad_input(&out, &["/nonexistent/bzImage"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("--netmap-rings"), "16 is accepted: {err}");
}

#[test]
fn unknown_option() {
    assert_bad_input(&ptvmm(&["--kernel", "x", "--bogus"]), &["--bogus"]);
}

#[test]
fn help_shows_examples_and_exits_zero() {
    let out = ptvmm(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Examples:") && text.contains("--kernel"),
        "{text}"
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A fresh folder under /tmp (sticky, open to all) with mode 0755, whatever the umask and
/// wherever the checkout and `TMPDIR` are.
fn world_readable_dir(tag: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = PathBuf::from("/tmp").join(format!("ptvmm-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Runs ptvmm as an unprivileged user who cannot open /dev/kvm (mode 0600 or 0660 root:kvm).
#[test]
fn kvm_permission_denied_says_how_to_fix() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    assert!(
        is_root(),
        "this test drops to the 'nobody' user and so must start as root"
    );
    // The checkout may sit where 'nobody' cannot enter (a mktemp folder, /root/...): run a
    // copy of the binary, and a kernel file, from a folder of our own that anyone may enter.
    let dir = world_readable_dir("nobody");
    let exe = dir.join("ptvmm");
    std::fs::copy(env!("CARGO_BIN_EXE_ptvmm"), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let k = dir.join("bzImage");
    std::fs::copy(fake_bzimage(), &k).unwrap();
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(&exe)
        .args(["--kernel", k.to_str().unwrap()])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap_or_else(|e| panic!("running {} as uid 65534: {e}", exe.display()));
    let _ = std::fs::remove_dir_all(&dir);
    assert_bad_input(&out, &["/dev/kvm", "kvm' group"]);
}

/// Hides /dev/kvm in a private mount namespace (tmpfs over /dev) and runs ptvmm there.
#[test]
fn no_dev_kvm_says_how_to_fix() {
    assert!(
        is_root(),
        "this test needs root for unshare(1) and a private /dev"
    );
    let k = fake_bzimage();
    let script = format!(
        "mount -t tmpfs none /dev && exec {} --kernel {}",
        env!("CARGO_BIN_EXE_ptvmm"),
        k.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare(1) from util-linux");
    assert_bad_input(&out, &["No /dev/kvm"]);
}

/// A bzImage whose 64-bit entry point spins forever (`jmp $`): a guest that never ends
/// by itself, for the tests of the ways a user ends it.
fn spinning_bzimage() -> PathBuf {
    let mut h = std::fs::read(fake_bzimage()).unwrap();
    // setup_sects = 1: the protected-mode code starts at file offset 2 * 512 and is loaded
    // at 1 MiB; the 64-bit entry is 0x200 into it.
    let entry = 2 * 512 + 0x200;
    h.resize(entry + 0x100, 0x90);
    h[entry] = 0xeb;
    h[entry + 1] = 0xfe;
    tmp_file("spinning-bzImage", &h)
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    secs: u64,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[test]
fn sigterm_stops_the_vm_with_status_143() {
    let k = spinning_bzimage();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ptvmm"))
        .args(["--kernel", k.to_str().unwrap(), "--memory", "64"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_with_timeout(&mut child, 10).expect("ptvmm stops on SIGTERM");
    assert_eq!(status.code(), Some(128 + 15));
}

/// Ctrl-A x on a terminal quits with status 0 and gives the terminal back in canonical mode.
#[test]
fn ctrl_a_x_on_a_terminal_quits_and_restores_it() {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes the two descriptors; the other arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just created by openpty and are owned here.
    let (mut master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let k = spinning_bzimage();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ptvmm"))
        .args(["--kernel", k.to_str().unwrap(), "--memory", "64"])
        .stdin(slave.try_clone().unwrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    master.write_all(b"\x01x").unwrap();
    let status = wait_with_timeout(&mut child, 10).expect("ptvmm quits on Ctrl-A x");
    assert_eq!(status.code(), Some(0));
    // SAFETY: all-zero is a valid termios; tcgetattr fills it from the slave.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&slave);
    // SAFETY: `fd` is an open terminal descriptor and `t` is writable.
    let rc = unsafe { libc::tcgetattr(fd, &mut t) };
    assert_eq!(rc, 0);
    assert_ne!(t.c_lflag & libc::ICANON, 0, "terminal left in raw mode");
    assert_ne!(t.c_lflag & libc::ECHO, 0, "echo not restored");
}
