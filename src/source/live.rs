//! Live capture from a network interface through libpcap (cargo feature `live`).
//!
//! [`LiveCapture`] opens the device with the options users expect from tcpdump (snap
//! length, promiscuous mode, kernel buffer size, immediate mode on by default so findings
//! appear as they happen), compiles a BPF filter, and hands on [`RawPacket`]s numbered from 1
//! like the frames of the `-w` file written beside them. The handle is non-blocking and
//! waited on with `poll(2)`: on Linux, libpcap's read timeout does not fire on an idle
//! interface, and the analysis must still release idle flows and notice a stop request.

use super::{FrameRef, RawPacket};
use crate::time::Timestamp;
use std::os::fd::AsRawFd;

/// How to open the interface.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Device name (`None`: libpcap's default device).
    pub interface: Option<String>,
    /// BPF filter expression (empty: everything).
    pub filter: String,
    /// Bytes captured per packet.
    pub snaplen: i32,
    /// Promiscuous mode.
    pub promiscuous: bool,
    /// Kernel buffer size in bytes (`None`: libpcap's default).
    pub buffer_size: Option<i32>,
    /// Deliver packets as they arrive rather than in batches.
    pub immediate: bool,
}

/// Packet counts from libpcap (`pcap_stats`).
#[derive(Copy, Clone, Debug, Default, serde::Serialize)]
pub struct LiveStats {
    /// Packets received by the filter.
    pub received: u64,
    /// Packets the kernel dropped because the buffer was full.
    pub dropped: u64,
    /// Packets the interface or driver dropped.
    pub interface_dropped: u64,
}

/// Why the capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// Not allowed to capture.
    #[error("no permission to capture on {device}: {detail}\n  Capturing needs root or the capabilities CAP_NET_RAW and CAP_NET_ADMIN. Run it with sudo:\n    sudo resetscope live ...\n  or give the binary the capabilities once:\n    sudo setcap cap_net_raw,cap_net_admin=eip $(command -v resetscope)")]
    Permission {
        /// The device.
        device: String,
        /// libpcap's message.
        detail: String,
    },
    /// The filter does not compile.
    #[error("bad capture filter {filter:?}: {detail}")]
    Filter {
        /// The expression.
        filter: String,
        /// libpcap's message.
        detail: String,
    },
    /// Anything else libpcap reported.
    #[error("{context}: {detail}")]
    Pcap {
        /// What we were doing.
        context: String,
        /// libpcap's message.
        detail: String,
    },
}

fn pcap_err(context: impl Into<String>) -> impl FnOnce(pcap::Error) -> LiveError {
    let context = context.into();
    move |e| LiveError::Pcap {
        context,
        detail: e.to_string(),
    }
}

/// Lists capture devices as `tcpdump -D` does: `N.name (description) [flags]`.
pub fn list_interfaces() -> Result<Vec<String>, LiveError> {
    let devices = pcap::Device::list().map_err(pcap_err("listing interfaces"))?;
    Ok(devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut flags = Vec::new();
            if d.flags.is_up() {
                flags.push("Up");
            }
            if d.flags.is_running() {
                flags.push("Running");
            }
            if d.flags.is_loopback() {
                flags.push("Loopback");
            }
            let desc = d
                .desc
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", flags.join(", "))
            };
            format!("{}.{}{}{}", i + 1, d.name, desc, flags)
        })
        .collect())
}

/// An open live capture.
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    linktype: u32,
    frames: u64,
    device: String,
}

impl LiveCapture {
    /// Opens the device and applies the filter.
    pub fn open(opts: &LiveOptions) -> Result<LiveCapture, LiveError> {
        let device = match &opts.interface {
            Some(name) => pcap::Device::from(name.as_str()),
            None => pcap::Device::lookup()
                .map_err(pcap_err("finding the default interface"))?
                .ok_or_else(|| LiveError::Pcap {
                    context: "finding the default interface".into(),
                    detail: "none found; name one with -i".into(),
                })?,
        };
        let name = device.name.clone();
        let mut inactive = pcap::Capture::from_device(device)
            .map_err(pcap_err(format!("opening {name}")))?
            .snaplen(opts.snaplen)
            .promisc(opts.promiscuous)
            .immediate_mode(opts.immediate)
            .timeout(100);
        if let Some(size) = opts.buffer_size {
            inactive = inactive.buffer_size(size);
        }
        let cap = inactive.open().map_err(|e| {
            let detail = e.to_string();
            if detail.contains("ermission") || detail.contains("not permitted") {
                LiveError::Permission {
                    device: name.clone(),
                    detail,
                }
            } else {
                LiveError::Pcap {
                    context: format!("opening {name}"),
                    detail,
                }
            }
        })?;
        let mut cap = cap
            .setnonblock()
            .map_err(pcap_err("setting non-blocking mode"))?;
        if !opts.filter.trim().is_empty() {
            cap.filter(&opts.filter, true)
                .map_err(|e| LiveError::Filter {
                    filter: opts.filter.clone(),
                    detail: e.to_string(),
                })?;
        }
        // Like tcpdump, prefer Linux cooked v2 where libpcap offers it (`-i any`): it also
        // records the interface each packet was seen on.
        if cap.get_datalink().0 == 113
            && cap
                .list_datalinks()
                .is_ok_and(|l| l.iter().any(|d| d.0 == 276))
        {
            cap.set_datalink(pcap::Linktype(276))
                .map_err(pcap_err("selecting Linux cooked v2"))?;
        }
        let linktype = cap.get_datalink().0 as u32;
        Ok(LiveCapture {
            cap,
            linktype,
            frames: 0,
            device: name,
        })
    }

    /// The device name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The link type of the device.
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// The next packet if one is ready, without waiting.
    pub fn try_next(&mut self) -> Result<Option<RawPacket<'_>>, LiveError> {
        match self.cap.next_packet() {
            Ok(p) => {
                self.frames += 1;
                // time_t is i32 on some platforms.
                #[allow(clippy::useless_conversion)]
                let ts = Timestamp::from_parts(
                    i64::from(p.header.ts.tv_sec),
                    p.header.ts.tv_usec as u64,
                    1_000_000,
                );
                Ok(Some(RawPacket {
                    frame: FrameRef {
                        file: 0,
                        number: self.frames,
                    },
                    ts,
                    linktype: self.linktype,
                    orig_len: p.header.len,
                    data: p.data,
                    comment: None,
                }))
            }
            Err(pcap::Error::TimeoutExpired) | Err(pcap::Error::NoMorePackets) => Ok(None),
            Err(e) => Err(pcap_err("reading packets")(e)),
        }
    }

    /// Waits up to `ms` milliseconds for packets to be ready, for `also` to be readable
    /// (the kernel's reset events), or for a signal.
    pub fn wait(&self, ms: i32, also: Option<std::os::fd::RawFd>) {
        let mut fds = [self.cap.as_raw_fd(), also.unwrap_or(-1)].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        let n = if also.is_some() { 2 } else { 1 };
        // SAFETY: `n` valid pollfds for the duration of the call.
        unsafe {
            libc::poll(fds.as_mut_ptr(), n, ms);
        }
    }

    /// libpcap's counters so far.
    pub fn stats(&mut self) -> LiveStats {
        self.cap
            .stats()
            .map(|s| LiveStats {
                received: s.received as u64,
                dropped: s.dropped as u64,
                interface_dropped: s.if_dropped as u64,
            })
            .unwrap_or_default()
    }
}
