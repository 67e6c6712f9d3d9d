//! `top [SWITCH]`: a per-port view refreshed once a second: receive and transmit rates
//! (packets and bits per second), drops (per second and in all), malformed frames, and the
//! occupancy of the port's rings. On a terminal it takes the screen until `q` or Ctrl-C (or
//! SIGINT/SIGTERM); otherwise it prints a plain snapshot every second.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use vale::admin::{PortListing, PortRings, RingFill};

use crate::list;
use crate::term::{self, Key, Screen};

/// The refresh interval.
const PERIOD: Duration = Duration::from_secs(1);

/// One port at one moment.
#[derive(Debug, Clone)]
pub struct PortSample {
    pub switch: String,
    pub port: PortListing,
    /// None if the port's file could not be read (it closed meanwhile).
    pub rings: Option<PortRings>,
}

impl PortSample {
    /// Same switch, same entry, same incarnation of the port.
    fn same(&self, o: &PortSample) -> bool {
        self.switch == o.switch
            && self.port.info.idx == o.port.info.idx
            && self.port.info.gen == o.port.info.gen
    }
}

/// Every port shown, at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub ports: Vec<PortSample>,
    /// The switch asked for has gone (its last port closed).
    pub gone: Option<String>,
}

/// Reads the ports of switch `one` (or of all switches) and their rings.
pub fn sample(dir: Option<&Path>, one: Option<&str>) -> Result<Sample> {
    let at = Instant::now();
    let switches = match list::switches(dir, one) {
        Ok(s) => s,
        Err(e) => match (one, e.downcast_ref::<vale::ValeError>()) {
            (Some(s), Some(vale::ValeError::NoSwitch(_))) => {
                return Ok(Sample {
                    at,
                    ports: Vec::new(),
                    gone: Some(format!("vale{s}")),
                })
            }
            _ => return Err(e),
        },
    };
    let ports = switches
        .into_iter()
        .flat_map(|s| {
            let name = s.name;
            s.ports.into_iter().map(move |p| PortSample {
                rings: vale::admin::port_rings(dir, &name, &p.info).ok(),
                switch: name.clone(),
                port: p,
            })
        })
        .collect();
    Ok(Sample {
        at,
        ports,
        gone: None,
    })
}

/// A rate in a few characters: `0`, `999`, `1.23K`, `14.9M`, `9.84G`.
pub fn rate(v: f64) -> String {
    if !v.is_finite() || v < 0.5 {
        return "0".to_string();
    }
    if v < 1000.0 {
        return format!("{v:.0}");
    }
    let mut v = v;
    let mut unit = ' ';
    for u in ['K', 'M', 'G', 'T'] {
        v /= 1000.0;
        unit = u;
        if v < 1000.0 {
            break;
        }
    }
    if v < 10.0 {
        format!("{v:.2}{unit}")
    } else if v < 100.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.0}{unit}")
    }
}

/// `used/slots` over all rings of one direction, `-` if unknown.
fn fill(f: Option<RingFill>) -> String {
    match f {
        Some(f) => format!("{}/{}", f.used, f.slots),
        None => "-".to_string(),
    }
}

/// The table's header line.
pub const HEADER: &str = "port                      pid state    rx_pps   rx_bps   tx_pps   tx_bps  drops/s   rx_drops   tx_bad         rxq         txq";

/// The table lines of `cur`, with rates against `prev` (`-` for a port not in `prev`, or
/// without `prev`).
pub fn rows(prev: Option<&Sample>, cur: &Sample) -> Vec<String> {
    let dt = prev.map(|p| cur.at.saturating_duration_since(p.at).as_secs_f64());
    let mut out = vec![HEADER.to_string()];
    if let Some(g) = &cur.gone {
        out.push(format!("{g} is gone (its last port closed)"));
    } else if cur.ports.is_empty() {
        out.push("no ports".to_string());
    }
    for p in &cur.ports {
        let before = prev.and_then(|s| s.ports.iter().find(|o| o.same(p)));
        let per_s = |f: fn(&vale::PortStats) -> u64, scale: f64| match (before, dt) {
            (Some(b), Some(dt)) if dt > 0.0 => {
                rate(f(&p.port.stats).saturating_sub(f(&b.port.stats)) as f64 * scale / dt)
            }
            _ => "-".to_string(),
        };
        let st = &p.port.stats;
        out.push(format!(
            "{:<20} {:>8} {:<5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8} {:>11} {:>11}",
            format!("vale{}:{}", p.switch, p.port.info.name),
            list::owner(&p.port),
            list::state(&p.port),
            per_s(|s| s.rx_pkts, 1.0),
            per_s(|s| s.rx_bytes, 8.0),
            per_s(|s| s.tx_pkts, 1.0),
            per_s(|s| s.tx_bytes, 8.0),
            per_s(|s| s.rx_drops, 1.0),
            st.rx_drops,
            st.tx_bad,
            fill(p.rings.as_ref().map(PortRings::rx_total)),
            fill(p.rings.as_ref().map(PortRings::tx_total)),
        ));
    }
    out
}

/// The current time of day, UTC.
fn clock() -> String {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 86400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

fn title(one: Option<&str>, interactive: bool) -> String {
    let what = one.map_or("all switches".to_string(), |s| format!("vale{s}"));
    let keys = if interactive {
        "; q or Ctrl-C quits"
    } else {
        ""
    };
    format!(
        "ptvmm-vale-ctl top: {what} at {}, rates per second over {} s{keys}",
        clock(),
        PERIOD.as_secs()
    )
}

/// Runs `top` for switch `one` (or all) for `count` frames (or until stopped).
pub fn run(dir: Option<&Path>, one: Option<&str>, count: Option<u64>) -> Result<()> {
    pktgen::cli::install_stop_signals();
    let first = sample(dir, one)?;
    if let Some(g) = &first.gone {
        anyhow::bail!("No switch named {}", g.trim_start_matches("vale"));
    }
    if term::is_tty(1) && term::is_tty(0) {
        interactive(dir, one, count, first)
    } else {
        plain(dir, one, count, first)
    }
}

fn interactive(
    dir: Option<&Path>,
    one: Option<&str>,
    count: Option<u64>,
    first: Sample,
) -> Result<()> {
    let screen = Screen::enter(0).context("setting up the terminal")?;
    let mut prev: Option<Sample> = None;
    let mut cur = first;
    let mut frames = 0u64;
    loop {
        let (height, width) = term::size(1);
        let mut lines = vec![title(one, true), String::new()];
        lines.extend(rows(prev.as_ref(), &cur));
        screen
            .draw(&lines, height, width)
            .context("writing to the terminal")?;
        frames += 1;
        if count.is_some_and(|c| frames >= c) {
            break;
        }
        let next = cur.at + PERIOD;
        loop {
            if pktgen::cli::stopped() {
                return Ok(());
            }
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if term::read_key(0, left.as_millis().min(1000) as i32)
                .context("reading the keyboard")?
                == Key::Quit
            {
                return Ok(());
            }
        }
        prev = Some(cur);
        cur = sample(dir, one)?;
    }
    drop(screen);
    Ok(())
}

/// Sleeps until `until` unless SIGINT/SIGTERM arrives first (then returns false).
fn sleep_until(until: Instant) -> bool {
    loop {
        if pktgen::cli::stopped() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Not a terminal: a snapshot per second (from the second sample on, so it has rates),
/// separated by blank lines.
fn plain(dir: Option<&Path>, one: Option<&str>, count: Option<u64>, first: Sample) -> Result<()> {
    use std::io::Write;
    let mut prev = first;
    let mut frames = 0u64;
    loop {
        if count.is_some_and(|c| frames >= c) || !sleep_until(prev.at + PERIOD) {
            break;
        }
        let cur = sample(dir, one)?;
        let mut text = title(one, false);
        text.push('\n');
        for l in rows(Some(&prev), &cur) {
            text.push_str(&l);
            text.push('\n');
        }
        text.push('\n');
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) ends the run quietly.
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            break;
        }
        frames += 1;
        prev = cur;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_short() {
        assert_eq!(rate(0.0), "0");
        assert_eq!(rate(0.4), "0");
        assert_eq!(rate(f64::NAN), "0");
        assert_eq!(rate(7.0), "7");
        assert_eq!(rate(999.0), "999");
        assert_eq!(rate(1234.0), "1.23K");
        assert_eq!(rate(14_880_952.0), "14.9M");
        assert_eq!(rate(123_456_789.0), "123M");
        assert_eq!(rate(9.84e9), "9.84G");
        assert_eq!(rate(2e15), "2000T");
    }

    fn port(name: &str, idx: u32, gen: u32, rx_pkts: u64) -> PortSample {
        use vale::switch::EntryInfo;
        PortSample {
            switch: "0".to_string(),
            port: PortListing {
                info: EntryInfo {
                    idx,
                    gen,
                    owner: 42,
                    name: name.to_string(),
                    config: Default::default(),
                    region_size: 0,
                    file_size: 0,
                    flags: 0,
                    hdr_len: 0,
                },
                alive: true,
                stats: vale::PortStats {
                    rx_pkts,
                    rx_bytes: rx_pkts * 60,
                    ..Default::default()
                },
            },
            rings: Some(PortRings {
                tx: vec![RingFill {
                    used: 0,
                    slots: 1024,
                }],
                rx: vec![RingFill {
                    used: 7,
                    slots: 1024,
                }],
            }),
        }
    }

    #[test]
    fn rows_compute_rates_per_incarnation() {
        let t0 = Instant::now();
        let a = Sample {
            at: t0,
            ports: vec![port("a", 0, 1, 1000), port("b", 1, 2, 0)],
            gone: None,
        };
        let b = Sample {
            at: t0 + Duration::from_secs(2),
            ports: vec![port("a", 0, 1, 3000), port("b", 1, 3, 500)],
            gone: None,
        };
        let r = rows(Some(&a), &b);
        assert_eq!(r[0], HEADER);
        let f: Vec<&str> = r[1].split_whitespace().collect();
        assert_eq!(f[..5], ["vale0:a", "42", "alive", "1.00K", "480K"]);
        assert_eq!(f[10], "7/1024");
        let g: Vec<&str> = r[2].split_whitespace().collect();
        assert_eq!(g[3], "-", "port b is a new incarnation: no rate yet");
        let first = rows(None, &a);
        assert_eq!(first[1].split_whitespace().nth(3), Some("-"));
        // The header names every column a row has.
        assert_eq!(HEADER.split_whitespace().count(), f.len());
    }

    #[test]
    fn a_vanished_switch_is_said() {
        let s = Sample {
            at: Instant::now(),
            ports: vec![],
            gone: Some("vale7".into()),
        };
        assert!(rows(None, &s)[1].contains("vale7 is gone"));
    }
}
