//! The repository's own checks, not part of Stampede: see `tests/tidy.rs`
//! (`cargo test -p xtask`), which holds the workspace to ARCHITECTURE.md's layers and to
//! the habits every source file shares.
