//! Test kit of wcfs-rs: a model of the WCFS server, the deterministic
//! simulation of clients against it, and a FUSE test server speaking the
//! protocol from the same model.
#![warn(missing_docs)]

pub mod model;
pub mod server;
// Documented by the simulation's own rework (issue 16, shape 2).
#[allow(missing_docs)]
pub mod sim;
