//! Shared code of pkt-gen: frame building and verification, checksums, report formatting,
//! and the single-process copy loop used as the benchmark's limit. The host binary
//! `ptvmm-pktgen` (and later a guest version) are thin drivers around it.

pub mod checksum;
pub mod copyloop;
pub mod frame;
pub mod report;
