//! Needs taxonomy (placeholder, being written).
