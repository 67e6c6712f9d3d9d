//! PCI: bus 0 behind configuration mechanism #1, type-0 config spaces with BARs and a
//! capability list, MSI-X, the host bridge, and the router that keeps BARs on the buses.

pub mod bus;
pub mod config;
pub mod device;
pub mod host_bridge;
pub mod msix;
pub mod router;

pub use bus::{PciBusError, PciConfigIo, PciRoot, CONFIG_IO_LEN};
pub use config::{
    BarChange, BarKind, ConfigError, ConfigSpace, PciIds, COMMAND_BUS_MASTER, COMMAND_IO,
    COMMAND_MEMORY,
};
pub use device::{BarRegion, HostResource, PciDevice, SharedPciDevice};
pub use host_bridge::HostBridge;
pub use msix::{MsiMessage, MsixConfig};
pub use router::{BarListener, BarRouter};
