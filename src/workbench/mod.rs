//! The terminal UI: the workbench's keys and event loop ([`app`]), its panels ([`view`]), and
//! the playback of recorded sessions ([`playback`]). It draws what [`crate::lab`] computes.

pub mod app;
mod help_keys;
pub mod playback;
pub mod view;
