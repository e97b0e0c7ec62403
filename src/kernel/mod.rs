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
//! - [`netns`]: whether a live capture runs in the host's network namespace or one of its
//!   own, which decides what a RST with no event means.
//! - [`netstat`]: the kernel's TCP abort and listen counters from `/proc/net/netstat`, read
//!   at the start and the stop of a live capture.

pub mod netns;
pub mod netstat;
pub mod reason;

#[cfg(feature = "live")]
pub mod join;
#[cfg(feature = "live")]
pub mod tracefs;

use serde::Serialize;

/// What the report says of the host's kernel: whether its reset events were read (and why
/// not), how many RSTs had each reason, and the change of its counters over a live capture.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HostKernel {
    /// Where the reasons come from: `tracefs` (a live capture read the events) or
    /// `packet_comments` (a pcapng that a live capture wrote); `null` when none were read.
    pub reasons_from: Option<&'static str>,
    /// Why the kernel's reset events could not be read (one line), if they could not.
    pub unavailable: Option<String>,
    /// Events the kernel reported lost from its trace buffer.
    pub events_lost: u64,
    /// RSTs by what the kernel said of them.
    pub resets: Vec<ReasonCount>,
    /// The change of the TCP abort and listen counters over the capture (live only).
    pub counters: Vec<netstat::CounterChange>,
    /// The network namespace the live capture ran in (`null` offline, or when `/proc`
    /// does not say).
    pub network_namespace: Option<netns::NetNs>,
}

/// How many RSTs on the wire the kernel said one thing of.
#[derive(Clone, Debug, Serialize)]
pub struct ReasonCount {
    /// The reason (event, name, plain words).
    #[serde(flatten)]
    pub reason: reason::KernelReason,
    /// RSTs.
    pub rsts: u64,
}

impl HostKernel {
    /// The counts of a reason table.
    pub fn counts(table: &reason::ReasonTable) -> Vec<ReasonCount> {
        table
            .counts()
            .into_iter()
            .map(|(reason, rsts)| ReasonCount { reason, rsts })
            .collect()
    }
}
