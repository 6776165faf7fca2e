//! Linux backend.
