//! berth-net
pub mod dns;
