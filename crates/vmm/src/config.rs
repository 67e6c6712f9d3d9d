//! The VM's configuration as the CLI hands it over, and its validation: every bad value
//! becomes one [`Error::Config`] line naming the option.

use std::path::PathBuf;

use crate::error::{Error, Result};

pub const MIN_MEMORY_MIB: u64 = 64;
pub const MAX_CPUS: u8 = 32;
pub const DEFAULT_MEMORY_MIB: u64 = 512;
/// Most rings per direction of a ptnet port (`--netmap-rings N` gives N TX + N RX rings):
/// half of [`netmap::ptnet::MAX_RINGS`], the rings the NIC has kick registers for.
pub const MAX_NETMAP_RINGS: u32 = netmap::ptnet::MAX_RINGS / 2;
/// The kernel command line used when the user gives none.
pub const DEFAULT_CMDLINE: &str = "console=ttyS0 reboot=k panic=-1";

#[derive(Debug, Clone)]
pub struct VmConfig {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
    pub memory_mib: u64,
    pub cpus: u8,
    /// Host CPUs for the vCPU threads: vCPU i runs on `pin_vcpus[i % len]`; empty: unpinned.
    pub pin_vcpus: Vec<usize>,
    /// A ptnet NIC on a VALE port, if any.
    pub net: Option<NetConfig>,
}

/// The ptnet NIC's options.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// VALE port name, `valeX:Y`.
    pub port: String,
    /// MAC address; derived stably from the port name when `None`.
    pub mac: Option<[u8; 6]>,
    pub doorbells: crate::io_handlers::Doorbells,
    pub msi: crate::msi::MsiMode,
    /// Rings per direction and slots per ring of the port.
    pub rings: u32,
    pub slots: u32,
    /// Directory of the VALE switch files (None: `$PTVMM_SHM_DIR` or /dev/shm).
    pub shm_dir: Option<PathBuf>,
    /// Open the port lossless: a full destination holds the guest's TX frames instead of
    /// dropping them (docs/vale.md, "Lossless ports").
    pub lossless: bool,
    /// Offer the guest the virtio-net header (checksum and segmentation offloads; the
    /// switch converts its frames for ports without one).
    pub offloads: bool,
    /// How long a TX worker polls for more frames before it sleeps and asks for kicks.
    pub tx_spin: std::time::Duration,
}

/// A parsed `--netmap` value: `valeX:Y[,lossless][,offloads]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetmapSpec {
    pub port: String,
    pub lossless: bool,
    pub offloads: bool,
}

/// Parses a `--netmap` value `valeX:Y[,lossless][,offloads]`.
pub fn parse_netmap_spec(spec: &str) -> std::result::Result<NetmapSpec, String> {
    let mut parts = spec.split(',');
    let mut s = NetmapSpec {
        port: parts.next().unwrap_or_default().to_string(),
        lossless: false,
        offloads: false,
    };
    for opt in parts {
        match opt {
            "lossless" => s.lossless = true,
            "offloads" => s.offloads = true,
            _ => {
                return Err(format!(
                    "--netmap {spec}: unknown option '{opt}' (valeX:Y[,lossless][,offloads])"
                ))
            }
        }
    }
    Ok(s)
}

/// The host CPUs this process may run on (its affinity mask), or `None` if unknown.
pub fn allowed_host_cpus() -> Option<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `set`.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return None;
    }
    // SAFETY: CPU_ISSET only reads the set, and every index is below CPU_SETSIZE.
    Some(
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect(),
    )
}

/// `0-3,6` style text of a sorted CPU list.
fn cpu_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// Parses `aa:bb:cc:dd:ee:ff` into a unicast MAC address.
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bad = || {
        Error::Config(format!(
            "--mac {text}: want six hex bytes like 02:00:00:00:00:01"
        ))
    };
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 != 0 {
        return Err(Error::Config(format!(
            "--mac {text} is a multicast address"
        )));
    }
    Ok(mac)
}

impl VmConfig {
    /// Checks the values that do not need the files or KVM; `host_mib` is the host's RAM.
    pub fn validate(&self, host_mib: Option<u64>) -> Result<()> {
        if self.memory_mib < MIN_MEMORY_MIB {
            return Err(Error::Config(format!(
                "--memory {} MiB is too small: a Linux guest needs at least {MIN_MEMORY_MIB} MiB",
                self.memory_mib
            )));
        }
        if let Some(host) = host_mib {
            if self.memory_mib > host {
                return Err(Error::Config(format!(
                    "--memory {} MiB is more than this host's {host} MiB of RAM",
                    self.memory_mib
                )));
            }
        }
        if let Some(allowed) = allowed_host_cpus() {
            if let Some(&c) = self.pin_vcpus.iter().find(|c| !allowed.contains(c)) {
                return Err(Error::Config(format!(
                    "--pin-vcpus {c}: this process may run on host CPUs {} only",
                    cpu_list(&allowed)
                )));
            }
        }
        if self.cpus == 0 || self.cpus > MAX_CPUS {
            return Err(Error::Config(format!(
                "--cpus {} is out of range: give 1 to {MAX_CPUS}",
                self.cpus
            )));
        }
        if let Some(net) = &self.net {
            if !(1..=MAX_NETMAP_RINGS).contains(&net.rings) {
                return Err(Error::Config(format!(
                    "--netmap-rings {} is out of range: give 1 to {MAX_NETMAP_RINGS} \
                     (the NIC has kick registers for {} rings, N TX + N RX)",
                    net.rings,
                    netmap::ptnet::MAX_RINGS
                )));
            }
        }
        if self.cmdline.len() >= crate::layout::CMDLINE_MAX_SIZE {
            return Err(Error::Config(format!(
                "--cmdline is {} bytes long; the limit is {}",
                self.cmdline.len(),
                crate::layout::CMDLINE_MAX_SIZE - 1
            )));
        }
        Ok(())
    }
}

/// The host's total RAM in MiB, from /proc/meminfo.
pub fn host_memory_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo_total_mib(&text)
}

fn parse_meminfo_total_mib(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mem: u64, cpus: u8) -> VmConfig {
        VmConfig {
            kernel: "k".into(),
            initrd: None,
            cmdline: DEFAULT_CMDLINE.into(),
            memory_mib: mem,
            cpus,
            pin_vcpus: Vec::new(),
            net: None,
        }
    }

    #[test]
    fn netmap_spec_takes_optional_lossless_and_offloads_flags() {
        let spec = |lossless, offloads| {
            Ok(NetmapSpec {
                port: "vale0:1".into(),
                lossless,
                offloads,
            })
        };
        assert_eq!(parse_netmap_spec("vale0:1"), spec(false, false));
        assert_eq!(parse_netmap_spec("vale0:1,lossless"), spec(true, false));
        assert_eq!(parse_netmap_spec("vale0:1,offloads"), spec(false, true));
        assert_eq!(
            parse_netmap_spec("vale0:1,offloads,lossless"),
            spec(true, true)
        );
        let e = parse_netmap_spec("vale0:1,fast").unwrap_err();
        assert!(e.contains("unknown option 'fast'"), "{e}");
    }

    #[test]
    fn pinning_to_cpus_this_process_may_use() {
        let allowed = allowed_host_cpus().expect("sched_getaffinity");
        let mut c = cfg(512, 2);
        c.pin_vcpus = vec![allowed[0]];
        assert!(c.validate(None).is_ok());
        c.pin_vcpus = vec![allowed[0], 100_000];
        let e = c.validate(None).unwrap_err();
        assert_eq!(e.exit_status(), 2);
        assert!(e.to_string().contains("--pin-vcpus 100000"), "{e}");
        assert_eq!(cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:00:0a:ff:00:01").unwrap(),
            [2, 0, 10, 255, 0, 1]
        );
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:0g",
            "020:0:00:00:00:01",
            "01:00:00:00:00:00",
        ] {
            assert_eq!(parse_mac(bad).unwrap_err().exit_status(), 2, "{bad}");
        }
    }

    #[test]
    fn limits() {
        assert!(cfg(512, 1).validate(Some(1024)).is_ok());
        assert!(cfg(64, 32).validate(None).is_ok());
        let msg = |c: VmConfig, host| c.validate(host).unwrap_err().to_string();
        assert!(msg(cfg(63, 1), None).contains("--memory 63 MiB is too small"));
        assert!(msg(cfg(2048, 1), Some(1024)).contains("more than this host's 1024 MiB"));
        assert!(msg(cfg(512, 0), None).contains("--cpus 0"));
        assert!(msg(cfg(512, 33), None).contains("--cpus 33"));
        let mut long = cfg(512, 1);
        long.cmdline = "x".repeat(3000);
        assert!(msg(long, None).contains("--cmdline"));
        assert_eq!(cfg(1, 1).validate(None).unwrap_err().exit_status(), 2);
    }

    #[test]
    fn netmap_rings_per_direction_fit_the_kick_registers() {
        let with_rings = |rings| VmConfig {
            net: Some(NetConfig {
                port: "vale0:1".into(),
                mac: None,
                doorbells: crate::io_handlers::Doorbells::Ioeventfd,
                msi: crate::msi::MsiMode::Irqfd,
                rings,
                slots: 1024,
                shm_dir: None,
                lossless: false,
                offloads: false,
                tx_spin: std::time::Duration::ZERO,
            }),
            ..cfg(512, 1)
        };
        assert_eq!(MAX_NETMAP_RINGS, 16);
        for ok in [1, 2, MAX_NETMAP_RINGS] {
            assert!(with_rings(ok).validate(None).is_ok(), "{ok}");
        }
        for bad in [0, MAX_NETMAP_RINGS + 1, 32, u32::MAX] {
            let e = with_rings(bad).validate(None).unwrap_err();
            assert_eq!(e.exit_status(), 2);
            assert_eq!(
                e.to_string(),
                format!(
                    "--netmap-rings {bad} is out of range: give 1 to 16 \
                     (the NIC has kick registers for 32 rings, N TX + N RX)"
                )
            );
        }
    }

    #[test]
    fn meminfo() {
        let t = "MemTotal:       24583012 kB\nMemFree:  1 kB\n";
        assert_eq!(parse_meminfo_total_mib(t), Some(24006));
        assert_eq!(parse_meminfo_total_mib("nothing"), None);
        assert!(host_memory_mib().is_some());
    }
}
