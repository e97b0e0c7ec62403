//! # resetscope
//!
//! Who closed this connection, and what request was in flight when it died?
//!
//! resetscope reads packet captures (or a live interface), reconstructs every TCP
//! connection, pairs HTTP/1.x requests with responses, and states the verdict on every close
//! and reset: which side closed first (FIN or RST, with frame numbers), how long the
//! connection had been idle, which request was in flight, whether it was written onto an
//! already-closing connection (the keep-alive idle race), whether it was idempotent, what
//! each server's idle timeout appears to be, and what to change.
//!
//! One pipeline, data flowing one way, a module per stage:
//! [`source`] → [`decode`] → [`flows`] → [`app`] → [`diagnose`] → [`report`], driven packet by
//! packet by [`pipeline::Analyzer`].

#![warn(missing_docs)]

pub mod allocator;
pub mod app;
pub mod community_id;
pub mod decode;
pub mod diagnose;
pub mod escape;
pub mod filter;
pub mod flows;
pub mod kernel;
pub mod pipeline;
pub mod report;
pub mod source;
pub mod time;
