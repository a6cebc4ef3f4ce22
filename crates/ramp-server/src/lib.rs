//! Control plane (in progress).
