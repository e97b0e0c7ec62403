//! Stage 6, report: the analysis rendered for people and programs.
//!
//! - [`terminal`]: the default; a summary line, the findings table (`comfy-table`), the
//!   per-server idle-timeout estimates with recommendations, and the caveats.
//! - [`json`]: one JSON document (schema in `docs/json-schema.md`), connection records
//!   streamed out as they are released so memory stays bounded.
//!
//! Captured text is always passed through [`crate::escape`].

pub mod caveats;
pub mod json;
pub mod terminal;

use crate::source::FrameRef;
use std::path::{Path, PathBuf};

/// Names frames for people: `#123` with one input file, `rot-2.pcap#123` with several.
#[derive(Clone, Debug, Default)]
pub struct FrameNamer {
    files: Vec<String>,
}

impl FrameNamer {
    /// For the given input paths.
    pub fn new(paths: &[PathBuf]) -> FrameNamer {
        FrameNamer {
            files: paths.iter().map(|p| file_name(p)).collect(),
        }
    }

    /// `#N`, or `FILE#N` when there are several files.
    pub fn name(&self, f: FrameRef) -> String {
        if self.files.len() > 1 {
            let file = self
                .files
                .get(f.file as usize)
                .map(String::as_str)
                .unwrap_or("?");
            format!("{}#{}", crate::escape::terminal(file), f.number)
        } else {
            format!("#{}", f.number)
        }
    }

    /// Several frames, comma-separated.
    pub fn list(&self, frames: &[FrameRef]) -> String {
        frames
            .iter()
            .map(|f| self.name(*f))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}
