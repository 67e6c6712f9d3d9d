//! Errors of the VALE switch.

use std::path::PathBuf;

/// Errors of opening, using and administering VALE switches and ports.
#[derive(Debug, thiserror::Error)]
pub enum ValeError {
    #[error("Invalid VALE port name {0:?} (expected valeX:Y, X and Y of letters, digits, _)")]
    BadName(String),
    #[error("I/O error on {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a ptvmm VALE switch of this version", .0.display())]
    NotASwitch(PathBuf),
    #[error("Port {name} is already open by process {pid}")]
    PortBusy { name: String, pid: u32 },
    #[error("Switch {0} has no free port (254 in use)")]
    SwitchFull(String),
    #[error("Invalid port configuration")]
    Layout(#[from] netmap::LayoutError),
    #[error("Switch {name} still has live ports (owner {pid})")]
    SwitchInUse { name: String, pid: u32 },
    #[error("No switch named {0}")]
    NoSwitch(String),
    #[error("Invalid virtio-net header length {0} (0, 10 or 12)")]
    BadHdrLen(u32),
    #[error("Persistent port {name} has {have}, not the {want} asked for")]
    ConfigMismatch {
        name: String,
        have: String,
        want: String,
    },
    #[error("No port named {0}")]
    NoPort(String),
    #[error("Port {0} already exists (persistent)")]
    PortExists(String),
    #[error("Port {name} is not persistent (it goes away when process {pid} closes it)")]
    NotPersistent { name: String, pid: u32 },
    #[error("Persistent port {name} is in use by process {pid}; close it there first")]
    PortInUse { name: String, pid: u32 },
    #[error("Switch {name} has persistent port {port}; remove it first (or delete with --force)")]
    HasPersistent { name: String, port: String },
}

impl ValeError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ValeError {
        let path = path.into();
        move |source| ValeError::Io { path, source }
    }
}
