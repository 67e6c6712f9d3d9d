//! `-P FILE.pcap`: the frames of a capture file, loaded once for tx to send in a loop, in
//! file order, as captured (timestamps are not replayed: `-R` paces).

use std::io::BufReader;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;

use crate::frame::MAX_LEN;

/// Smallest frame replayed: an Ethernet header.
pub const MIN_LEN: usize = 14;

/// Every frame of the pcap file at `path`, an Ethernet capture whose frames are
/// `MIN_LEN..=max` bytes long (as captured: a frame cut by the capture's snap length is sent
/// cut). Errors name the file and, for a frame, its number from 1.
pub fn load(path: &Path, max: usize) -> Result<Vec<Vec<u8>>> {
    let name = path.display();
    let file = std::fs::File::open(path).with_context(|| format!("-P {name}"))?;
    let mut r = PcapReader::new(BufReader::new(file))
        .map_err(|e| anyhow!("-P {name}: not a pcap file ({e})"))?;
    let link = r.header().datalink;
    if link != DataLink::ETHERNET {
        bail!("-P {name}: link type {link:?}; only Ethernet captures can be replayed");
    }
    let max = max.min(MAX_LEN);
    let mut frames = Vec::new();
    while let Some(p) = r.next_packet() {
        let n = frames.len() + 1;
        let p = p.map_err(|e| anyhow!("-P {name}: frame {n}: {e}"))?;
        let len = p.data.len();
        if len < MIN_LEN {
            bail!("-P {name}: frame {n} has {len} bytes, less than an Ethernet header");
        }
        if len > max {
            bail!("-P {name}: frame {n} has {len} bytes, more than the {max} a buffer holds");
        }
        frames.push(p.data.into_owned());
    }
    if frames.is_empty() {
        bail!("-P {name}: no frames in the file");
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use vale::fuzzing::TempDir;

    use super::*;
    use crate::frame::{build, Endpoints};

    /// Writes `frames` as a pcap file of link type `link` in `d`; returns its path.
    fn write(d: &TempDir, name: &str, link: DataLink, frames: &[Vec<u8>]) -> std::path::PathBuf {
        let path = d.0.join(name);
        let f = std::fs::File::create(&path).unwrap();
        let h = PcapHeader {
            datalink: link,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(f, h).unwrap();
        for (i, fr) in frames.iter().enumerate() {
            let p = PcapPacket::new(Duration::from_micros(i as u64), fr.len() as u32, fr);
            w.write_packet(&p).unwrap();
        }
        path
    }

    #[test]
    fn frames_load_in_file_order() {
        let d = TempDir::new("pcap-load");
        let frames: Vec<Vec<u8>> = [60, 1514, 61, 14]
            .iter()
            .map(|&l| {
                if l < 42 {
                    vec![0xee; l]
                } else {
                    build(&Endpoints::default(), l)
                }
            })
            .collect();
        let p = write(&d, "a.pcap", DataLink::ETHERNET, &frames);
        assert_eq!(load(&p, 2048).unwrap(), frames);
    }

    #[test]
    fn unusable_files_say_why() {
        let d = TempDir::new("pcap-bad");
        let f60 = build(&Endpoints::default(), 60);
        let cases = [
            (
                write(&d, "raw.pcap", DataLink::RAW, std::slice::from_ref(&f60)),
                "only Ethernet captures",
            ),
            (
                write(&d, "empty.pcap", DataLink::ETHERNET, &[]),
                "no frames",
            ),
            (
                write(
                    &d,
                    "big.pcap",
                    DataLink::ETHERNET,
                    &[f60.clone(), vec![0; 2000]],
                ),
                "frame 2 has 2000 bytes, more than the 1990 a buffer holds",
            ),
            (
                write(&d, "short.pcap", DataLink::ETHERNET, &[vec![0; 13]]),
                "frame 1 has 13 bytes, less than an Ethernet header",
            ),
        ];
        for (p, says) in cases {
            let e = load(&p, 1990).unwrap_err().to_string();
            assert!(e.contains(says), "{}: {e}", p.display());
        }
        let text = d.0.join("text.pcap");
        std::fs::write(&text, b"this is not a capture file at all").unwrap();
        let e = load(&text, 2048).unwrap_err().to_string();
        assert!(e.contains("not a pcap file"), "{e}");
        let e = load(&d.0.join("missing.pcap"), 2048).unwrap_err();
        assert!(format!("{e:#}").contains("missing.pcap"), "{e:#}");
        // A file cut in the middle of a frame.
        let whole = std::fs::read(write(&d, "cut.pcap", DataLink::ETHERNET, &[f60])).unwrap();
        let cut = d.0.join("cut2.pcap");
        std::fs::write(&cut, &whole[..whole.len() - 10]).unwrap();
        let e = load(&cut, 2048).unwrap_err().to_string();
        assert!(e.contains("frame 1: "), "{e}");
    }
}
