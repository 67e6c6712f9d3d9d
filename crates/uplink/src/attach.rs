//! Attaching an uplink (checks, the host endpoint, the VALE port, the forwarding threads,
//! the state file) and detaching one from another process.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netmap::RegionConfig;
use vale::{Port, PortOptions};

use crate::forward::{self, Stats};
use crate::state::{self, State};
use crate::{packet, sys, tap, xdp, Mode, UplinkError};

/// Room a frame needs beyond the MTU: the Ethernet header and one 802.1Q tag.
const L2_OVERHEAD: u32 = 18;

/// What to attach.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Switch name without `vale` (`0` for vale0).
    pub switch: String,
    /// The host interface.
    pub ifname: String,
    /// The mode; `None` tries xdp and falls back to packet.
    pub mode: Option<Mode>,
    /// Directory of the switch files (default `$PTVMM_SHM_DIR` or `/dev/shm`).
    pub shm_dir: Option<PathBuf>,
}

/// The port part of an uplink's VALE port name for interface `ifname` (characters a VALE
/// name does not allow become `_`).
pub fn port_part(ifname: &str) -> String {
    ifname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A running uplink: its two threads forward until [`Attached::shutdown`].
pub struct Attached {
    port: Arc<Port>,
    mode: Mode,
    dir: PathBuf,
    state: State,
    stats: Arc<Stats>,
    mtu: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    last: (Instant, u64, u64),
}

fn check_mtu(ifname: &str, mtu: u32, buf: u32) -> Result<(), UplinkError> {
    if mtu + L2_OVERHEAD > buf {
        return Err(UplinkError::Mtu {
            ifname: ifname.to_string(),
            mtu,
            frame: mtu + L2_OVERHEAD,
            buf,
            max: buf - L2_OVERHEAD,
        });
    }
    Ok(())
}

/// An existing interface that is up: its index and MTU.
fn check_iface(ifname: &str) -> Result<(u32, u32), UplinkError> {
    let idx = sys::ifindex(ifname).ok_or_else(|| UplinkError::NoInterface(ifname.to_string()))?;
    let flags = sys::if_flags(ifname).map_err(UplinkError::io("read the flags", ifname))?;
    if flags & libc::IFF_UP as u32 == 0 {
        return Err(UplinkError::Down(ifname.to_string()));
    }
    let mtu = sys::if_mtu(ifname).map_err(UplinkError::io("read the MTU", ifname))?;
    Ok((idx, mtu))
}

/// Attaches interface `o.ifname` to switch `o.switch` as port `vale<switch>:<port_part>`.
/// `note` receives one line when the default mode falls back from xdp to packet.
pub fn attach(o: &AttachOptions, note: &mut dyn FnMut(String)) -> Result<Attached, UplinkError> {
    if !sys::valid_ifname(&o.ifname) {
        return Err(UplinkError::BadIfName(o.ifname.clone()));
    }
    let part = port_part(&o.ifname);
    let full = format!("vale{}:{part}", o.switch);
    vale::name::parse(&full)?;
    let dir = vale::switch::shm_dir(o.shm_dir.as_deref());
    let me = std::process::id();
    if let Some((_, s)) = state::all(&dir)
        .into_iter()
        .find(|(_, s)| s.ifname == o.ifname && s.pid != me && sys::alive(s.pid))
    {
        return Err(UplinkError::Attached {
            ifname: o.ifname.clone(),
            switch: s.switch,
            pid: s.pid,
        });
    }
    // A killed xdp uplink of this interface left its XDP program attached: remove it first.
    for (p, s) in state::all(&dir) {
        if s.ifname == o.ifname && s.mode == "xdp" && !sys::alive(s.pid) {
            if let Some(idx) = sys::ifindex(&o.ifname) {
                match xdp::remove_stale(idx) {
                    Ok(()) => log::info!(
                        "{}: removed the XDP program of dead uplink {}",
                        o.ifname,
                        s.pid
                    ),
                    Err(e) => log::warn!(
                        "{}: removing the XDP program of dead uplink {}: {e}",
                        o.ifname,
                        s.pid
                    ),
                }
            }
            let _ = std::fs::remove_file(p);
        }
    }
    let cfg = RegionConfig::default();
    let (mode, host) = match o.mode {
        Some(Mode::Tap) => (Mode::Tap, tap::open(&o.ifname)?),
        Some(Mode::Packet) => {
            let (idx, mtu) = check_iface(&o.ifname)?;
            check_mtu(&o.ifname, mtu, cfg.buf_size)?;
            (Mode::Packet, packet::open(&o.ifname, idx, mtu)?)
        }
        Some(Mode::Xdp) => {
            let (idx, mtu) = check_iface(&o.ifname)?;
            check_mtu(&o.ifname, mtu, cfg.buf_size)?;
            (Mode::Xdp, xdp::open(&o.ifname, idx, mtu)?)
        }
        None => {
            let (idx, mtu) = check_iface(&o.ifname)?;
            check_mtu(&o.ifname, mtu, cfg.buf_size)?;
            match xdp::open(&o.ifname, idx, mtu) {
                Ok(h) => (Mode::Xdp, h),
                Err(e) => {
                    note(format!("{e}; using --mode packet"));
                    (Mode::Packet, packet::open(&o.ifname, idx, mtu)?)
                }
            }
        }
    };
    check_mtu(&o.ifname, host.mtu, cfg.buf_size)?;
    let opts = PortOptions {
        config: cfg,
        shm_dir: Some(dir.clone()),
        lossless: false,
        vnet_hdr_len: 0,
    };
    let port = Arc::new(Port::open(&full, &opts)?);
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(f)
            .map_err(UplinkError::io("start a forwarding thread", &o.ifname))
    };
    let (p, s, st) = (port.clone(), stats.clone(), stop.clone());
    let rx = host.rx;
    threads.push(spawn(
        "uplink-in",
        Box::new(move || forward::ingress(p, rx, s, st)),
    )?);
    let (p, s, st) = (port.clone(), stats.clone(), stop.clone());
    let mtu = Arc::new(AtomicU32::new(host.mtu));
    let (tx, m) = (host.tx, mtu.clone());
    match spawn(
        "uplink-out",
        Box::new(move || forward::egress(p, tx, m, s, st)),
    ) {
        Ok(t) => threads.push(t),
        Err(e) => {
            stop.store(true, Relaxed);
            for t in threads {
                let _ = t.join();
            }
            return Err(e);
        }
    }
    let state = State {
        switch: o.switch.clone(),
        port: part,
        ifname: o.ifname.clone(),
        mode: mode.to_string(),
        detail: host.detail,
        pid: me,
        ..State::default()
    };
    let mut a = Attached {
        port,
        mode,
        dir,
        state,
        stats,
        mtu,
        stop,
        threads,
        last: (Instant::now(), 0, 0),
    };
    a.publish();
    log::info!("{full}: uplink to {} ({mode})", o.ifname);
    Ok(a)
}

impl Attached {
    /// The uplink's VALE port name.
    pub fn port_name(&self) -> &str {
        self.port.full_name()
    }

    /// The mode in use.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Re-reads the interface's MTU and rewrites the state file (counters and the rates
    /// since the last call).
    pub fn publish(&mut self) {
        if let Ok(m) = sys::if_mtu(&self.state.ifname) {
            self.mtu.store(m, Relaxed);
        }
        let c = |v: &std::sync::atomic::AtomicU64| v.load(Relaxed);
        let st = &self.stats;
        let s = &mut self.state;
        (s.in_pkts, s.in_bytes, s.out_pkts, s.out_bytes) = (
            c(&st.in_pkts),
            c(&st.in_bytes),
            c(&st.out_pkts),
            c(&st.out_bytes),
        );
        (
            s.drop_big,
            s.drop_mtu,
            s.drop_host,
            s.drop_kernel,
            s.drop_bad,
        ) = (
            c(&st.drop_big),
            c(&st.drop_mtu),
            c(&st.drop_host),
            c(&st.drop_kernel),
            c(&st.drop_bad),
        );
        let (t, i, o) = self.last;
        let dt = t.elapsed().as_secs_f64();
        if dt >= 0.5 {
            s.in_pps = ((s.in_pkts - i) as f64 / dt) as u64;
            s.out_pps = ((s.out_pkts - o) as f64 / dt) as u64;
            self.last = (Instant::now(), s.in_pkts, s.out_pkts);
        }
        if let Err(e) = state::write(&self.dir, s) {
            log::warn!("{}: writing the state file: {e}", self.port.full_name());
        }
    }

    /// Forwards until `stopped()` is true, publishing the state once a second; then shuts
    /// down.
    pub fn run(mut self, stopped: &dyn Fn() -> bool) {
        let mut next = Instant::now() + Duration::from_secs(1);
        while !stopped() && !self.threads.iter().any(|t| t.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            if Instant::now() >= next {
                self.publish();
                next += Duration::from_secs(1);
            }
        }
        self.shutdown();
    }

    /// Stops the threads, closes the port and the host endpoint, removes the state file.
    pub fn shutdown(mut self) {
        self.stop.store(true, Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let p = state::path(&self.dir, &self.state.switch, &self.state.port);
        let _ = std::fs::remove_file(p);
        log::info!("{}: uplink detached", self.port.full_name());
    }
}

/// Detaches interface `ifname` from switch `switch`: SIGTERM to its uplink process, then
/// waits (at most 5 s, then SIGKILL) until the port is gone. Returns the process id.
pub fn detach(dir: Option<&Path>, switch: &str, ifname: &str) -> Result<u32, UplinkError> {
    let dir = vale::switch::shm_dir(dir);
    let part = port_part(ifname);
    let path = state::path(&dir, switch, &part);
    let not = || UplinkError::NotAttached(ifname.to_string(), switch.to_string());
    let s = state::read(&path)
        .filter(|s| s.ifname == ifname)
        .ok_or_else(not)?;
    let owns = || {
        vale::admin::list_switch(Some(&dir), switch)
            .ok()
            .and_then(|l| l.ports.into_iter().find(|p| p.info.name == part))
            .is_some_and(|p| p.info.owner == s.pid && sys::alive(s.pid))
    };
    if !owns() {
        // The uplink died (its port was reclaimed or is about to be): a stale file.
        let _ = std::fs::remove_file(&path);
        return Err(not());
    }
    sys::kill(s.pid, libc::SIGTERM);
    let gone = |limit: Duration| {
        let t = Instant::now();
        while t.elapsed() < limit {
            if !owns() && !path.exists() || !sys::alive(s.pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    };
    if !gone(Duration::from_secs(5)) {
        log::warn!("uplink process {} did not stop in 5 s: SIGKILL", s.pid);
        sys::kill(s.pid, libc::SIGKILL);
        gone(Duration::from_secs(2));
        let _ = std::fs::remove_file(&path);
    }
    Ok(s.pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_from_interface_names() {
        assert_eq!(port_part("eth0"), "eth0");
        assert_eq!(port_part("veth-a.100"), "veth_a_100");
    }

    fn opts(dir: &Path, ifname: &str, mode: Option<Mode>) -> AttachOptions {
        AttachOptions {
            switch: "0".into(),
            ifname: ifname.into(),
            mode,
            shm_dir: Some(dir.to_path_buf()),
        }
    }

    #[test]
    fn bad_input_is_refused_before_anything_is_created() {
        let d = vale::fuzzing::TempDir::new("uplink-bad");
        let mut notes = Vec::new();
        let mut note = |s: String| notes.push(s);
        for (name, mode, want) in [
            ("", Some(Mode::Packet), "Invalid interface name"),
            ("a/b", Some(Mode::Tap), "Invalid interface name"),
            ("ptvmmnonesuch", Some(Mode::Packet), "Unknown interface"),
            ("ptvmmnonesuch", Some(Mode::Xdp), "Unknown interface"),
            ("ptvmmnonesuch", None, "Unknown interface"),
        ] {
            let e = attach(&opts(&d.0, name, mode), &mut note)
                .err()
                .expect("must fail");
            assert!(e.to_string().contains(want), "{name}: {e}");
        }
        assert!(notes.is_empty());
        // Nothing was left behind: no switch, no state file.
        assert_eq!(std::fs::read_dir(&d.0).unwrap().count(), 0);
        let e = detach(Some(&d.0), "0", "eth0").expect_err("must fail");
        assert!(e.to_string().contains("not attached"), "{e}");
    }
}
