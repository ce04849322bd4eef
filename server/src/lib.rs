//! The gridsync server: merges record documents from every device, answers
//! each with what it lacks, and keeps accounts and tokens.
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a
//! listener until a shutdown signal. `main` is a thin layer over these, so
//! tests drive exactly what production runs.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod export;
pub mod http;
pub mod metrics;
pub mod projection;
pub mod storage;

pub use domain::{now_ms, random_hex};
pub use http::{ApiJson, ApiQuery, AppState, app, serve};
