//! A userspace VALE switch in shared memory.
//!
//! Switches and ports live in files under `/dev/shm` (or `$PTVMM_SHM_DIR`): opening
//! `valeX:Y` creates switch X if needed and a new ephemeral port Y with its own netmap
//! region; closing the port removes it, and the last port out removes the switch. Several
//! processes (ptvmm VMs, pkt-gen) attach by name. Forwarding runs in the sender's txsync
//! (learning bridge, flooding, per-destination batched copies); receivers sleep on a futex
//! in the shared file. Ports of processes that died are reclaimed by the next party.
//!
//! See docs/vale.md for the design.

pub mod admin;
mod error;
pub mod forward;
pub mod fuzzing;
pub mod layout;
mod learn;
mod lock;
pub mod name;
mod peers;
mod port;
pub mod switch;
mod sys;
pub mod vnet;

pub use error::ValeError;
pub use port::{Port, PortOptions, PortStats};
pub use switch::SHM_DIR_ENV;
pub use sys::{alive as process_alive, Mapping};
