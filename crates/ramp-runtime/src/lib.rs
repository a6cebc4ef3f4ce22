//! Local process runtime (in progress).
