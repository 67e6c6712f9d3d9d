//! `list [SWITCH] [--json]`: switches, their ports (owner, state, mode, rings, counters,
//! persistence) and uplinks, as a table or as one JSON document.

use std::path::Path;

use anyhow::{Context, Result};
use uplink::state::State;
use vale::admin::{PortListing, SwitchListing};

use crate::json::{Obj, Value};

/// The switches to show: all, or the one named.
pub fn switches(dir: Option<&Path>, one: Option<&str>) -> Result<Vec<SwitchListing>> {
    Ok(match one {
        Some(s) => vec![vale::admin::list_switch(dir, s)?],
        None => vale::admin::list(dir).context("listing switches")?,
    })
}

/// `alive`, `dead` (its owner process is gone), or `idle` (a persistent port nobody has open).
pub fn state(p: &PortListing) -> &'static str {
    if p.info.idle() {
        "idle"
    } else if p.alive {
        "alive"
    } else {
        "dead"
    }
}

/// The owner pid, or `-` for an idle persistent port.
pub fn owner(p: &PortListing) -> String {
    if p.info.idle() {
        "-".to_string()
    } else {
        p.info.owner.to_string()
    }
}

/// The live uplinks of switch `s`, each with the switch's `rx_drops` of its port (frames
/// the interface sent that found the port's ring full).
fn uplinks(s: &SwitchListing, states: &[(std::path::PathBuf, State)]) -> Vec<(State, u64)> {
    s.ports
        .iter()
        .filter_map(|p| {
            states
                .iter()
                .find(|(_, u)| {
                    u.switch == s.name
                        && u.port == p.info.name
                        && u.pid == p.info.owner
                        && uplink::sys::alive(u.pid)
                })
                .map(|(_, u)| (u.clone(), p.stats.rx_drops))
        })
        .collect()
}

/// Prints the listing as tables.
pub fn print_text(dir: Option<&Path>, switches: &[SwitchListing]) {
    if switches.is_empty() {
        println!("no switches");
    }
    let states = uplink::state::all(&vale::switch::shm_dir(dir));
    for s in switches {
        println!("vale{}: {} port(s)", s.name, s.ports.len());
        println!(
            "  {:<4} {:<20} {:>8} {:<5} {:<8} {:>9} {:>12} {:>14} {:>10} {:>12} {:>14} {:>10} {:<7}",
            "idx",
            "port",
            "pid",
            "state",
            "mode",
            "rings",
            "tx_pkts",
            "tx_bytes",
            "tx_bad",
            "rx_pkts",
            "rx_bytes",
            "rx_drops",
            "persist"
        );
        for p in &s.ports {
            let c = p.info.config;
            println!(
                "  {:<4} {:<20} {:>8} {:<5} {:<8} {:>9} {:>12} {:>14} {:>10} {:>12} {:>14} {:>10} {:<7}",
                p.info.idx,
                format!("vale{}:{}", s.name, p.info.name),
                owner(p),
                state(p),
                if p.info.lossless() {
                    "lossless"
                } else {
                    "drop"
                },
                format!(
                    "{}x{}/{}x{}",
                    c.tx_rings, c.tx_slots, c.rx_rings, c.rx_slots
                ),
                p.stats.tx_pkts,
                p.stats.tx_bytes,
                p.stats.tx_bad,
                p.stats.rx_pkts,
                p.stats.rx_bytes,
                p.stats.rx_drops,
                if p.info.persistent() { "yes" } else { "no" }
            );
        }
        let uplinks = uplinks(s, &states);
        if uplinks.is_empty() {
            continue;
        }
        println!("  uplinks (in: interface -> switch, out: switch -> interface; drops: switch full ring / frame too big / over MTU / interface refused / kernel ring full / malformed):");
        println!(
            "  {:<20} {:<16} {:<8} {:>10} {:>10} {:>12} {:>12} {:>30}",
            "port",
            "interface",
            "mode",
            "in_pps",
            "out_pps",
            "in_pkts",
            "out_pkts",
            "drops ring/big/mtu/host/kern/bad"
        );
        for (u, ring_drops) in uplinks {
            let mode = if u.detail.is_empty() {
                u.mode.clone()
            } else {
                format!("{} ({})", u.mode, u.detail)
            };
            println!(
                "  {:<20} {:<16} {:<8} {:>10} {:>10} {:>12} {:>12} {:>30}",
                format!("vale{}:{}", u.switch, u.port),
                u.ifname,
                mode,
                u.in_pps,
                u.out_pps,
                u.in_pkts,
                u.out_pkts,
                format!(
                    "{}/{}/{}/{}/{}/{}",
                    ring_drops, u.drop_big, u.drop_mtu, u.drop_host, u.drop_kernel, u.drop_bad
                )
            );
        }
    }
}

fn port_json(sw: &str, p: &PortListing) -> Value {
    let c = p.info.config;
    let st = p.stats;
    Obj::new()
        .field("index", p.info.idx)
        .field("name", format!("vale{sw}:{}", p.info.name))
        .field(
            "owner",
            if p.info.idle() {
                Value::Null
            } else {
                p.info.owner.into()
            },
        )
        .field("state", state(p))
        .field("persistent", p.info.persistent())
        .field("lossless", p.info.lossless())
        .field("vnet_hdr_len", p.info.hdr_len)
        .field("tx_rings", c.tx_rings)
        .field("tx_slots", c.tx_slots)
        .field("rx_rings", c.rx_rings)
        .field("rx_slots", c.rx_slots)
        .field("buf_size", c.buf_size)
        .field("tx_pkts", st.tx_pkts)
        .field("tx_bytes", st.tx_bytes)
        .field("tx_bad", st.tx_bad)
        .field("rx_pkts", st.rx_pkts)
        .field("rx_bytes", st.rx_bytes)
        .field("rx_drops", st.rx_drops)
        .build()
}

fn uplink_json(u: &State, ring_drops: u64) -> Value {
    Obj::new()
        .field("port", format!("vale{}:{}", u.switch, u.port))
        .field("interface", u.ifname.as_str())
        .field("mode", u.mode.as_str())
        .field("detail", u.detail.as_str())
        .field("pid", u.pid)
        .field("in_pps", u.in_pps)
        .field("out_pps", u.out_pps)
        .field("in_pkts", u.in_pkts)
        .field("in_bytes", u.in_bytes)
        .field("out_pkts", u.out_pkts)
        .field("out_bytes", u.out_bytes)
        .field(
            "drops",
            Obj::new()
                .field("ring", ring_drops)
                .field("big", u.drop_big)
                .field("mtu", u.drop_mtu)
                .field("host", u.drop_host)
                .field("kernel", u.drop_kernel)
                .field("bad", u.drop_bad)
                .build(),
        )
        .build()
}

/// The listing as one JSON document: `{"switches":[{"name","ports":[...],"uplinks":[...]}]}`.
pub fn to_json(dir: Option<&Path>, switches: &[SwitchListing]) -> Value {
    let states = uplink::state::all(&vale::switch::shm_dir(dir));
    let sw = switches
        .iter()
        .map(|s| {
            Obj::new()
                .field("name", format!("vale{}", s.name))
                .field(
                    "ports",
                    s.ports
                        .iter()
                        .map(|p| port_json(&s.name, p))
                        .collect::<Vec<_>>(),
                )
                .field(
                    "uplinks",
                    uplinks(s, &states)
                        .iter()
                        .map(|(u, d)| uplink_json(u, *d))
                        .collect::<Vec<_>>(),
                )
                .build()
        })
        .collect::<Vec<_>>();
    Obj::new().field("switches", sw).build()
}
