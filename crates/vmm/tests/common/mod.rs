//! Shared pieces of the KVM integration tests (also used by examples/ptnet_bench.rs).
#![allow(dead_code)]
pub mod driver;
pub mod rig;
