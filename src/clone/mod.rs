//! The clone flows, written against the safe server layer.

pub mod donor;
pub mod local;
