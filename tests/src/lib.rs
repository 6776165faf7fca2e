//! Test kit of wcfs-rs: a model of the WCFS server, the deterministic
//! simulation of clients against it, and a FUSE test server speaking the
//! protocol from the same model.
#![warn(missing_docs)]

pub mod model;
pub mod server;
pub mod sim;
pub mod sim_vm;
