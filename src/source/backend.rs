//! Where a capture file's bytes come from: the file mapped into memory and parsed in place
//! (pages handed back to the kernel as the cursor moves on), or `pcap-parser`'s buffered
//! reader for anything that cannot be mapped. Both hand [`super::file::CaptureFile`] the next
//! block and how many bytes it takes.

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapBlock, PcapBlockOwned, PcapError};

/// Bytes read before the pages behind them are handed back to the kernel.
const RELEASE_EVERY: usize = 4 << 20;

/// Parses one classic pcap record (byte order and format variant chosen by the header).
pub(super) type LegacyParser =
    fn(&[u8]) -> pcap_parser::nom::IResult<&[u8], LegacyPcapBlock<'_>, PcapError<&[u8]>>;

/// Where the bytes come from.
pub(super) enum Backend {
    /// The file mapped into memory: `pos` is the cursor, `released` how far pages have been
    /// handed back.
    Mapped {
        map: memmap2::Mmap,
        pos: usize,
        released: usize,
        pcapng: bool,
        big_endian: bool,
        legacy: Option<LegacyParser>,
    },
    /// `pcap-parser`'s buffered reader.
    Stream(Box<dyn PcapReaderIterator + Send>),
}

impl Backend {
    /// The input's size in bytes, when it is a mapped file (a pipe's is not known).
    pub(super) fn size(&self) -> Option<u64> {
        match self {
            Backend::Mapped { map, .. } => Some(map.len() as u64),
            Backend::Stream(_) => None,
        }
    }

    /// The bytes from the cursor on.
    pub(super) fn data(&self) -> &[u8] {
        match self {
            Backend::Mapped { map, pos, .. } => &map[*pos..],
            Backend::Stream(r) => r.data(),
        }
    }

    /// Moves the cursor past `n` bytes.
    pub(super) fn consume(&mut self, n: usize) {
        match self {
            Backend::Stream(r) => r.consume_noshift(n),
            Backend::Mapped {
                map, pos, released, ..
            } => {
                *pos += n;
                let upto = *pos & !4095;
                if upto >= *released + RELEASE_EVERY {
                    // SAFETY: only whole pages before the cursor are released; no slice
                    // handed out refers to them any more, and a read-only private file
                    // mapping reads back the same bytes if they are ever touched again.
                    #[cfg(unix)]
                    unsafe {
                        let _ = map.unchecked_advise_range(
                            memmap2::UncheckedAdvice::DontNeed,
                            *released,
                            upto - *released,
                        );
                    }
                    *released = upto;
                }
            }
        }
    }

    /// The next block, and how many bytes it takes.
    pub(super) fn next(&mut self) -> Result<(usize, PcapBlockOwned<'_>), PcapError<&[u8]>> {
        let (map, pos, pcapng, big_endian, legacy) = match self {
            Backend::Stream(r) => return r.next(),
            Backend::Mapped {
                map,
                pos,
                pcapng,
                big_endian,
                legacy,
                ..
            } => (map, *pos, *pcapng, big_endian, legacy),
        };
        let data = &map[pos..];
        if data.is_empty() {
            return Err(PcapError::Eof);
        }
        let parsed = if pcapng {
            let parse = if *big_endian {
                pcap_parser::pcapng::parse_block_be
            } else {
                pcap_parser::pcapng::parse_block_le
            };
            parse(data).map(|(rest, b)| {
                if let Block::SectionHeader(ref shb) = b {
                    *big_endian = shb.big_endian();
                }
                (rest, PcapBlockOwned::from(b))
            })
        } else if let Some(parse) = legacy {
            parse(data).map(|(rest, b)| (rest, PcapBlockOwned::from(b)))
        } else {
            pcap_parser::parse_pcap_header(data).map(|(rest, h)| {
                let parser: LegacyParser = match (h.is_modified_format(), h.is_bigendian()) {
                    (true, _) => pcap_parser::parse_pcap_frame_modified,
                    (false, true) => pcap_parser::parse_pcap_frame_be,
                    (false, false) => pcap_parser::parse_pcap_frame,
                };
                *legacy = Some(parser);
                (rest, PcapBlockOwned::from(h))
            })
        };
        match parsed {
            Ok((rest, block)) => Ok((data.len() - rest.len(), block)),
            // The whole file is there: a record that needs more is cut short.
            Err(pcap_parser::nom::Err::Incomplete(_)) => Err(PcapError::UnexpectedEof),
            Err(pcap_parser::nom::Err::Error(e)) | Err(pcap_parser::nom::Err::Failure(e)) => Err(e),
        }
    }
}
