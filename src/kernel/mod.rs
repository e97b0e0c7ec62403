//! What the host's own kernel says about the resets on the wire.
//!
//! - [`reason`]: the kernel's reason for a RST ([`reason::KernelReason`]), in plain words and
//!   by its `enum sk_rst_reason` name; how it is written as a pcapng packet comment and read
//!   back ([`reason::KernelReason::comment`], [`reason::KernelReason::from_comment`]); and
//!   the table of reasons by frame that the analysis joins to its findings
//!   ([`reason::ReasonTable`]).
//! - [`tracefs`] (feature `live`): a tracefs instance of its own that reads the
//!   `tcp:tcp_send_reset` and `tcp:tcp_receive_reset` events as they come, and
//!   [`join`] matches them to the RSTs captured on the wire by 4-tuple and time.
//! - [`netstat`]: the kernel's TCP abort and listen counters from `/proc/net/netstat`, read
//!   at the start and the stop of a live capture.

pub mod netstat;
pub mod reason;

#[cfg(feature = "live")]
pub mod join;
#[cfg(feature = "live")]
pub mod tracefs;
