//! Recording mock backend.
