//! switchover decides when a live migration can switch over, and reports how far it still has
//! to go, with the accounting model of QEMU 11.1 (see `docs/design.md` and `docs/qemu-model.md`).
//!
//! The crate is a safe Rust core (every module but [`ffi`]) behind a thin C ABI shell
//! ([`ffi`]), which converts and checks arguments and never decides anything.
//! Rust users may use the core directly through [`Session`].

pub(crate) mod abi_enum;
pub mod cfmt;
pub mod counters;
pub mod engine;
pub mod error;
pub mod eta;
pub mod events;
mod hooks;
mod locks;
pub mod ffi;
pub mod params;
pub mod pending;
pub mod ram;
pub mod reentrancy;
pub mod report;
pub mod session;
pub mod stall;
pub mod state;
pub mod size;
pub mod sys;
pub mod vfio;

pub use error::{Code, Error, Result};
pub use pending::{HandlerFlags, Pending, PendingSource};
pub use session::{Session, VmmHooks};
