//! The ptnetmap passthrough NIC (ABI: ../shared/design/ptnet-abi.md): the memdev function
//! that maps a netmap port's region into the guest, the NIC function with its registers and
//! MSI-X, and the ring workers that serve the guest's rings from host threads.

pub mod memdev;
pub mod nic;
pub mod regs;
pub mod stats;

mod irq;
mod worker;

#[cfg(test)]
mod nic_tests;
#[cfg(test)]
pub(crate) mod testutil;
#[cfg(test)]
mod worker_tests;

pub use memdev::PtnetMemdev;
pub use nic::{mac_from_name, NicOptions, PtnetNic};
pub use stats::{PtnetStats, RingStats, StatsSnapshot};

use crate::pci::ConfigError;

/// Errors of building the ptnet functions.
#[derive(Debug, thiserror::Error)]
pub enum PtnetError {
    #[error(
        "{0} rings in total; a ptnet NIC has at most {max} (one kick register each)",
        max = netmap::ptnet::MAX_RINGS
    )]
    TooManyRings(u32),
    #[error("Netmap region of {0} bytes does not fit a 32-bit BAR")]
    RegionTooLarge(usize),
    #[error("PCI configuration")]
    Config(#[from] ConfigError),
    #[error("Creating a doorbell eventfd")]
    EventFd(#[source] std::io::Error),
}

/// The host's shared view of 4 KiB of test RAM at `gpa`.
#[cfg(test)]
fn host_ram(ram: &testutil::TestRam, gpa: u64) -> netmap::SharedMem {
    use crate::host::GuestRam;
    ram.shared(gpa, 4096).expect("in test RAM")
}
