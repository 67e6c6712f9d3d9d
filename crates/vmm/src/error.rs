//! The VMM's error type and how each error maps to ptvmm's exit status.

use std::path::PathBuf;

use crate::boot::BootError;

/// Exit status for bad input (CLI values, files, host limits, missing KVM features).
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit status for a failure while the VM runs.
pub const EXIT_FAILURE: i32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error(
        "No /dev/kvm on this host: enable hardware virtualization and load kvm_intel or kvm_amd"
    )]
    NoKvm,
    #[error("No permission to open /dev/kvm: add your user to the 'kvm' group (usermod -aG kvm $USER, then log in again) or run as root")]
    KvmPermission,
    #[error("Cannot open /dev/kvm: {0}")]
    KvmOpen(#[source] kvm_ioctls::Error),
    #[error("KVM lacks a capability ptvmm needs: {0}")]
    KvmCapability(&'static str),
    #[error("KVM API version {0} is not the expected 12")]
    KvmApiVersion(i32),
    #[error("KVM: {what} failed: {source}")]
    Kvm {
        what: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
    #[error("Cannot allocate {mib} MiB of guest memory: {detail}")]
    GuestMemory { mib: u64, detail: String },
    #[error("Cannot write {0} to guest memory")]
    GuestWrite(&'static str),
    #[error("Cannot set up {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Cannot read {path}: {source}")]
    HostFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// ptvmm's exit status for this error: 2 for anything the user can fix in the input or
    /// the host setup, 1 for the rest.
    pub fn exit_status(&self) -> i32 {
        match self {
            Error::Config(_)
            | Error::Boot(_)
            | Error::NoKvm
            | Error::KvmPermission
            | Error::KvmCapability(_)
            | Error::KvmApiVersion(_)
            | Error::HostFile { .. } => EXIT_BAD_INPUT,
            _ => EXIT_FAILURE,
        }
    }

    pub(crate) fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
        move |source| Error::Kvm { what, source }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
