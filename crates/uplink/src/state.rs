//! An uplink's state file, `<shm dir>/ptvmm-uplink.<switch>.<port>`: what the uplink process
//! publishes once a second for `ptvmm-vale-ctl list` and `detach` (`key value` lines,
//! replaced atomically by a rename). A file whose process is gone is stale: `list` ignores
//! it and the next `attach` of that interface replaces it.

use std::path::{Path, PathBuf};

/// What an uplink publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Switch name without `vale` (`0`).
    pub switch: String,
    /// The port part of the uplink's VALE port name.
    pub port: String,
    pub ifname: String,
    pub mode: String,
    /// Mode details (e.g. "copy" for an AF_XDP socket in copy mode).
    pub detail: String,
    pub pid: u32,
    pub in_pkts: u64,
    pub in_bytes: u64,
    pub out_pkts: u64,
    pub out_bytes: u64,
    /// Frames per second over the last interval, host → switch and switch → host.
    pub in_pps: u64,
    pub out_pps: u64,
    pub drop_big: u64,
    pub drop_mtu: u64,
    pub drop_host: u64,
    pub drop_kernel: u64,
    pub drop_bad: u64,
}

const PREFIX: &str = "ptvmm-uplink.";

/// The state file of port `valeSW:PORT` in `dir`.
pub fn path(dir: &Path, switch: &str, port: &str) -> PathBuf {
    dir.join(format!("{PREFIX}{switch}.{port}"))
}

impl State {
    fn to_text(&self) -> String {
        let mut s = String::new();
        for (k, v) in [
            ("switch", &self.switch),
            ("port", &self.port),
            ("ifname", &self.ifname),
            ("mode", &self.mode),
            ("detail", &self.detail),
        ] {
            s.push_str(&format!("{k} {v}\n"));
        }
        for (k, v) in [
            ("pid", self.pid as u64),
            ("in_pkts", self.in_pkts),
            ("in_bytes", self.in_bytes),
            ("out_pkts", self.out_pkts),
            ("out_bytes", self.out_bytes),
            ("in_pps", self.in_pps),
            ("out_pps", self.out_pps),
            ("drop_big", self.drop_big),
            ("drop_mtu", self.drop_mtu),
            ("drop_host", self.drop_host),
            ("drop_kernel", self.drop_kernel),
            ("drop_bad", self.drop_bad),
        ] {
            s.push_str(&format!("{k} {v}\n"));
        }
        s
    }

    fn from_text(t: &str) -> Option<State> {
        let mut s = State::default();
        for l in t.lines() {
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            let num = || v.parse::<u64>().ok();
            match k {
                "switch" => s.switch = v.to_string(),
                "port" => s.port = v.to_string(),
                "ifname" => s.ifname = v.to_string(),
                "mode" => s.mode = v.to_string(),
                "detail" => s.detail = v.to_string(),
                "pid" => s.pid = u32::try_from(num()?).ok()?,
                "in_pkts" => s.in_pkts = num()?,
                "in_bytes" => s.in_bytes = num()?,
                "out_pkts" => s.out_pkts = num()?,
                "out_bytes" => s.out_bytes = num()?,
                "in_pps" => s.in_pps = num()?,
                "out_pps" => s.out_pps = num()?,
                "drop_big" => s.drop_big = num()?,
                "drop_mtu" => s.drop_mtu = num()?,
                "drop_host" => s.drop_host = num()?,
                "drop_kernel" => s.drop_kernel = num()?,
                "drop_bad" => s.drop_bad = num()?,
                _ => {}
            }
        }
        (!s.switch.is_empty() && !s.ifname.is_empty() && s.pid != 0).then_some(s)
    }

    /// Total frames dropped by the uplink itself (the switch's own `rx_drops` of the port
    /// come on top).
    pub fn drops(&self) -> u64 {
        self.drop_big + self.drop_mtu + self.drop_host + self.drop_kernel + self.drop_bad
    }
}

/// Writes `s` to its file in `dir` (atomically: a temporary file renamed over it).
pub fn write(dir: &Path, s: &State) -> std::io::Result<()> {
    let p = path(dir, &s.switch, &s.port);
    let tmp = dir.join(format!(".{PREFIX}{}.{}.{}", s.switch, s.port, s.pid));
    std::fs::write(&tmp, s.to_text())?;
    std::fs::rename(&tmp, &p)
}

/// Reads a state file.
pub fn read(p: &Path) -> Option<State> {
    State::from_text(&std::fs::read_to_string(p).ok()?)
}

/// Every state file in `dir` (live or stale), by path.
pub fn all(dir: &Path) -> Vec<(PathBuf, State)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(PathBuf, State)> = rd
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(PREFIX))
        })
        .filter_map(|e| read(&e.path()).map(|s| (e.path(), s)))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_garbage() {
        let s = State {
            switch: "0".into(),
            port: "veth_a".into(),
            ifname: "veth-a".into(),
            mode: "packet".into(),
            detail: String::new(),
            pid: 42,
            in_pkts: 1,
            in_bytes: 60,
            out_pkts: 2,
            out_bytes: 120,
            in_pps: 3,
            out_pps: 4,
            drop_big: 5,
            drop_mtu: 6,
            drop_host: 7,
            drop_kernel: 8,
            drop_bad: 9,
        };
        assert_eq!(State::from_text(&s.to_text()), Some(s.clone()));
        assert_eq!(s.drops(), 35);
        assert_eq!(State::from_text("pid x\nswitch 0\nifname a\n"), None);
        assert_eq!(State::from_text(""), None);
        let dir = vale::fuzzing::TempDir::new("uplink-state");
        write(&dir.0, &s).unwrap();
        let all = all(&dir.0);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1, s);
        assert_eq!(all[0].0, path(&dir.0, "0", "veth_a"));
    }
}
