//! The exporter process's own settings: its fd limit, and the privileges it
//! keeps once programs are attached.

pub mod capabilities;
pub mod limits;
pub mod logging;
pub mod sd_notify;
