//! TLS records, followed just far enough to see an idle race through encryption.
//!
//! After the handshake every record is opaque, but its 5-byte header is not: content type
//! 23 is application data (a request or a response), 21 an alert (after an idle timeout,
//! the server's encrypted `close_notify`). The tracker keeps, per direction, when
//! application data was last sent and when the first alert was sent, and, for the client,
//! the first application-data record written after the server's alert: the request that
//! raced the close.

use super::Mark;
use crate::flows::reassembly::StreamEvent;
use crate::flows::Side;

const HANDSHAKE: u8 = 22;
const ALERT: u8 = 21;
const APPLICATION_DATA: u8 = 23;

/// Record marks of one direction.
#[derive(Clone, Debug, Default)]
pub struct TlsDirection {
    /// Records seen.
    pub records: u64,
    /// Application-data records seen.
    pub app_data: u64,
    /// Start of the last application-data record.
    pub last_app_data: Option<Mark>,
    /// The first alert record.
    pub first_alert: Option<Mark>,
    /// Start of the first application-data record sent after the peer's first alert.
    pub app_data_after_peer_alert: Option<Mark>,
    /// Start of the last application-data record sent before the peer's first alert.
    pub app_data_before_peer_alert: Option<Mark>,
    header: [u8; 5],
    header_len: u8,
    body_left: u32,
    lost: bool,
}

/// TLS state of one connection: `[client, server]`.
#[derive(Default)]
pub struct Tls {
    /// Per direction, indexed by [`Side`].
    pub dirs: [TlsDirection; 2],
    /// A handshake record was seen.
    pub handshake_seen: bool,
}

impl Tls {
    /// Takes one stream event of `side`.
    pub fn on_event(&mut self, side: Side, ev: StreamEvent<'_>) {
        let c = match ev {
            StreamEvent::Data(c) => c,
            StreamEvent::Gap { .. } => {
                self.dirs[side as usize].lost = true;
                return;
            }
        };
        let mut i = 0;
        while i < c.data.len() {
            let d = &mut self.dirs[side as usize];
            if d.lost {
                return;
            }
            if d.body_left > 0 {
                let take = (d.body_left as usize).min(c.data.len() - i);
                d.body_left -= take as u32;
                i += take;
                continue;
            }
            d.header[d.header_len as usize] = c.data[i];
            d.header_len += 1;
            i += 1;
            if d.header_len < 5 {
                continue;
            }
            d.header_len = 0;
            let kind = d.header[0];
            if !(20..=24).contains(&kind) || d.header[1] != 3 {
                d.lost = true;
                return;
            }
            d.body_left = u16::from_be_bytes([d.header[3], d.header[4]]) as u32;
            d.records += 1;
            let mark = Mark {
                frame: c.frame,
                ts: c.ts,
            };
            match kind {
                HANDSHAKE => self.handshake_seen = true,
                ALERT => {
                    let d = &mut self.dirs[side as usize];
                    if d.first_alert.is_none() {
                        d.first_alert = Some(mark);
                    }
                }
                APPLICATION_DATA => {
                    let peer_alerted = self.dirs[1 - side as usize].first_alert.is_some();
                    let d = &mut self.dirs[side as usize];
                    d.app_data += 1;
                    d.last_app_data = Some(mark);
                    if peer_alerted {
                        d.app_data_after_peer_alert.get_or_insert(mark);
                    } else {
                        d.app_data_before_peer_alert = Some(mark);
                    }
                }
                _ => {}
            }
        }
    }
}
