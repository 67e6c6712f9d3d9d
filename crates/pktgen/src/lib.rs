//! Shared code of pkt-gen: frame building and verification, checksums, report formatting,
//! the single-process copy loop used as the benchmark's limit, and the backends the loops run
//! over (a VALE port on the host, ptnet.ko's `/dev/ptnetN` in a guest). `ptvmm-pktgen` is a
//! thin driver around it ([`opts`] its command line, [`run`] its loops); the same binary,
//! built static, is the guest's `/bin/pkt-gen`.

pub mod backend;
pub mod busypoll;
pub use netmap::checksum;
pub mod cli;
pub mod copyloop;
pub mod flows;
pub mod frags;
pub mod frame;
pub mod interface;
pub mod json;
pub mod latency;
pub mod opts;
pub mod out;
pub mod pcap;
pub mod ptnet;
pub mod ptnet_uapi;
pub mod report;
pub mod run;
pub mod seq;
