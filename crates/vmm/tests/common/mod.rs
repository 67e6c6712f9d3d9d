//! Shared pieces of the KVM integration tests.
pub mod driver;
