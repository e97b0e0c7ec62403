//! The `resetscope` command line.
//!
//! `resetscope analyze FILE...` reads capture files; `resetscope live` captures from an
//! interface (cargo feature `live`). Errors are printed with their context and a non-zero
//! exit status; a closed pipe (`resetscope … | head`) is not an error.

mod cmd;

/// mimalloc, tuned by [`resetscope::allocator::tune`] (see `src/allocator.rs` for why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{CommandFactory, Parser, Subcommand};
use std::io;
use std::process::ExitCode;

/// Who closed this connection, and what request was in flight when it died?
///
/// resetscope reconstructs every TCP connection in a capture, pairs HTTP/1.x requests with
/// responses, and says who closed each connection first (FIN or RST, with frame numbers),
/// which requests failed in keep-alive idle races, and what the server's idle timeout is.
#[derive(Parser, Debug)]
#[command(name = "resetscope", version, about, long_about = None, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyse pcap/pcapng files (several files are read as one capture, in time order).
    #[command(after_help = AFTER_HELP)]
    Analyze(cmd::analyze::AnalyzeArgs),
    /// Capture from a network interface and diagnose as it happens (cargo feature `live`).
    #[command(after_help = EXIT_STATUS)]
    Live(cmd::live::LiveArgs),
    /// Print a completion script for a shell (e.g. `resetscope completions bash >
    /// /etc/bash_completion.d/resetscope`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; e.g. `resetscope man > /usr/local/share/man/man1/resetscope.1`).
    Man,
}

/// The exit statuses, as every `--help` shows them.
macro_rules! exit_status {
    () => {
        "\
Exit status:
  0  the capture was analysed, findings or not
  1  an error: an input that cannot be used (not a capture, missing, empty; the readable
     ones are still reported), or the report could not be written
  2  a usage error (an unknown option, a bad value)
  3  --fail-on-findings, and there were findings of that severity"
    };
}

/// The closing text of `resetscope --help` and `resetscope analyze --help`: worked examples,
/// then the exit statuses.
const AFTER_HELP: &str = concat!(
    "\
Examples:
  # Who closed the connections, and which requests failed?
  resetscope analyze capture.pcap

  # Port 8080 of one host only, in the ten minutes from 14:00 UTC, as a ticket:
  resetscope analyze --since 14:00 --until 14:10 --format markdown -o ticket.md \\
      capture.pcap.gz -- 'tcp port 8080 and host 10.0.0.5'

  # Watch port 9000 live and keep the packets (root, and a build with --features live):
  sudo resetscope live -i any -w evidence.pcapng 'tcp port 9000'

",
    exit_status!()
);

/// The closing text of `resetscope live --help`.
const EXIT_STATUS: &str = exit_status!();

fn main() -> ExitCode {
    resetscope::allocator::tune();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => cmd::analyze::run(args),
        Command::Live(args) => cmd::live::run(args),
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "resetscope", &mut script);
            write_stdout(&script)
        }
        Command::Man => man_page(),
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

/// Writes the manual page, made by clap_mangen from the same definitions as `--help`: the
/// main page, then one section per subcommand.
fn man_page() -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let cmd = Cli::command();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !matches!(s.get_name(), "help"))
    {
        let name = sub.get_name().to_string();
        let sub = sub.clone().bin_name(format!("resetscope {name}"));
        writeln!(out, ".SH \"RESETSCOPE {}\"", name.to_uppercase())?;
        let page = clap_mangen::Man::new(sub);
        page.render_synopsis_section(&mut out)?;
        page.render_description_section(&mut out)?;
        page.render_options_section(&mut out)?;
    }
    man.render_extra_section(&mut out)?;
    man.render_version_section(&mut out)?;
    write_stdout(&out)
}

/// Writes `bytes` to standard output.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
