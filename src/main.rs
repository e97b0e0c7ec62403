//! The `resetscope` command line.
//!
//! `resetscope analyze FILE...` reads capture files; `resetscope live` captures from an
//! interface (cargo feature `live`). Errors are printed with their context and a non-zero
//! exit status; a closed pipe (`resetscope … | head`) is not an error.

mod cmd;

use clap::{Parser, Subcommand};
use std::io;
use std::process::ExitCode;

/// Who closed this connection, and what request was in flight when it died?
///
/// resetscope reconstructs every TCP connection in a capture, pairs HTTP/1.x requests with
/// responses, and says who closed each connection first (FIN or RST, with frame numbers),
/// which requests failed in keep-alive idle races, and what the server's idle timeout is.
#[derive(Parser, Debug)]
#[command(name = "resetscope", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyse pcap/pcapng files (several files are read as one capture, in time order).
    Analyze(cmd::analyze::AnalyzeArgs),
    /// Capture from a network interface and diagnose as it happens (cargo feature `live`).
    Live(cmd::live::LiveArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => cmd::analyze::run(args),
        Command::Live(args) => cmd::live::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors quote file names: shown escaped, like captured text.
            eprintln!(
                "resetscope: error: {}",
                resetscope::escape::terminal_lines(&format!("{e:#}"))
            );
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
