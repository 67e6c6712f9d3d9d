//! The netmap ABI as ptvmm uses it: layouts, shared-memory accessors, ring arithmetic.
//!
//! This crate performs no I/O and knows nothing of KVM or of the VALE switch. It describes
//! the memory a netmap port shares with its application (or with a guest through ptnetmap):
//!
//! - [`checksum`]: the Internet checksum (RFC 1071), for pkt-gen's frames and the switch's
//!   offload completion;
//! - [`abi`]: exact offsets and sizes of `netmap_slot`, `netmap_ring`, `netmap_if` and the
//!   CSB entries (ABI reference §2 and §4);
//! - [`shm`]: the single module that touches shared memory, through bounds-checked atomic
//!   and raw-pointer accessors over a base pointer and a length;
//! - [`view`]: typed views (ring, slot, netmap_if) built on [`shm::SharedMem`];
//! - [`region`]: the `[if pool][ring pool][buf pool]` region layout and its initialisation;
//! - [`ring`]: index arithmetic modulo the ring size;
//! - [`prologue`]: validation of untrusted `head`/`cur` (netmap's sync prologues);
//! - [`ptnet`]: the ptnet device ABI: PCI ids, BARs, register offsets, PTCTL commands,
//!   feature bits and the one ring limit [`ptnet::MAX_RINGS`] (ABI reference §1);
//! - [`csb`]: the ptnetmap communication status block with its memory-ordering rules;
//! - [`port`]: the [`port::NetmapPort`] trait a backend (VALE, a real `/dev/netmap`) offers
//!   to the VMM.

pub mod abi;
pub mod checksum;
pub mod csb;
pub mod port;
pub mod prologue;
pub mod ptnet;
pub mod region;
pub mod ring;
pub mod shm;
pub mod view;

pub use port::{NetmapPort, PortError, RegionInfo, RingKind, SyncResult};
pub use prologue::{rxsync_prologue, txsync_prologue, PrologueError};
pub use region::{LayoutError, Pool, RegionConfig, RegionLayout};
pub use shm::SharedMem;
pub use view::{IfView, RingView, SlotView};
