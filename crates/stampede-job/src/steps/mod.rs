//! The built-in steps. Each step lives in its own folder: its config and its run.

pub(crate) mod load;
