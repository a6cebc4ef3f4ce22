//! State store (in progress).
