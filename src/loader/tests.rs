//! Loader tests (filled below).
