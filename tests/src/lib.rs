//! Test kit of wcfs-rs: a model of the WCFS server, the deterministic
//! simulation of clients against it, and (with FUSE) a test server.
pub mod model;
pub mod sim;
