//! Integration tests of stampede-robust against real files in temporary directories and
//! real `sh`/`tar` commands.

mod actions;
mod command;
mod fingerprint;
mod http;
mod support;
mod writer;
