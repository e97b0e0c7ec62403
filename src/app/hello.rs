//! The two TLS hellos, read for what a ticket reader recognises: the server name (SNI,
//! RFC 6066 §3), the ALPN protocols (RFC 7301) and the version the server selected
//! (`supported_versions`, RFC 8446 §4.2.1). Every length is checked; a hello that lies about
//! one is read as far as it is consistent.

use super::tls::HelloInfo;

const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
/// Longest name kept.
const MAX_NAME: usize = 255;

/// A cursor over bytes that fails (returns `None`) instead of reading past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    /// A vector with a length prefix of `width` bytes.
    fn vec(&mut self, width: usize) -> Option<&'a [u8]> {
        let n = match width {
            1 => self.u8()? as usize,
            _ => self.u16()? as usize,
        };
        self.take(n)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(MAX_NAME)]).into_owned()
}

/// Reads one handshake message (type, 3-byte length, body) into `info`.
pub(super) fn read(msg: &[u8], info: &mut HelloInfo) {
    let _ = read_inner(msg, info);
}

fn read_inner(msg: &[u8], info: &mut HelloInfo) -> Option<()> {
    let mut r = Reader(msg);
    let kind = r.u8()?;
    r.take(3)?;
    if kind != CLIENT_HELLO && kind != SERVER_HELLO {
        return None;
    }
    let legacy = r.u16()?;
    r.take(32)?; // random
    r.vec(1)?; // session id
    if kind == CLIENT_HELLO {
        r.vec(2)?; // cipher suites
        r.vec(1)?; // compression methods
    } else {
        r.take(2)?; // cipher suite
        r.take(1)?; // compression method
        info.version = version_name(legacy);
    }
    let mut exts = Reader(r.vec(2)?);
    while let (Some(t), Some(body)) = (exts.u16(), exts.vec(2)) {
        let mut e = Reader(body);
        match (kind, t) {
            (CLIENT_HELLO, EXT_SERVER_NAME) => {
                let mut list = Reader(e.vec(2)?);
                while let (Some(name_type), Some(name)) = (list.u8(), list.vec(2)) {
                    if name_type == 0 {
                        info.sni = Some(text(name));
                        break;
                    }
                }
            }
            (_, EXT_ALPN) => {
                let mut list = Reader(e.vec(2)?);
                while let Some(p) = list.vec(1) {
                    if kind == SERVER_HELLO {
                        info.alpn_selected = Some(text(p));
                        break;
                    }
                    if info.alpn_offered.len() < 8 {
                        info.alpn_offered.push(text(p));
                    }
                }
            }
            (SERVER_HELLO, EXT_SUPPORTED_VERSIONS) => {
                info.version = version_name(e.u16()?);
            }
            _ => {}
        }
    }
    Some(())
}

fn version_name(v: u16) -> Option<&'static str> {
    match v {
        0x0304 => Some("1.3"),
        0x0303 => Some("1.2"),
        0x0302 => Some("1.1"),
        0x0301 => Some("1.0"),
        0x0300 => Some("SSL 3.0"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello as a real client builds it (SNI `example.com`, ALPN h2 and http/1.1).
    fn client_hello() -> Vec<u8> {
        let mut exts = Vec::new();
        let name = b"example.com";
        let mut sni = vec![0];
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name);
        let mut sni_ext = (sni.len() as u16).to_be_bytes().to_vec();
        sni_ext.extend_from_slice(&sni);
        exts.extend_from_slice(&EXT_SERVER_NAME.to_be_bytes());
        exts.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
        exts.extend_from_slice(&sni_ext);
        let mut alpn = Vec::new();
        for p in [&b"h2"[..], b"http/1.1"] {
            alpn.push(p.len() as u8);
            alpn.extend_from_slice(p);
        }
        let mut alpn_ext = (alpn.len() as u16).to_be_bytes().to_vec();
        alpn_ext.extend_from_slice(&alpn);
        exts.extend_from_slice(&EXT_ALPN.to_be_bytes());
        exts.extend_from_slice(&(alpn_ext.len() as u16).to_be_bytes());
        exts.extend_from_slice(&alpn_ext);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x13, 0x01]);
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut msg = vec![CLIENT_HELLO];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn reads_sni_and_alpn() {
        let mut info = HelloInfo::default();
        read(&client_hello(), &mut info);
        assert_eq!(info.sni.as_deref(), Some("example.com"));
        assert_eq!(info.alpn_offered, vec!["h2", "http/1.1"]);
    }

    #[test]
    fn lying_lengths_are_read_as_far_as_they_hold() {
        let mut msg = client_hello();
        for cut in 0..msg.len() {
            let mut info = HelloInfo::default();
            read(&msg[..cut], &mut info);
        }
        msg[45] = 0xff; // a cipher-suite length past the end
        let mut info = HelloInfo::default();
        read(&msg, &mut info);
        assert!(info.sni.is_none());
    }
}
