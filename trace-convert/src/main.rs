//! `trace-convert`: a thin wrapper over [`trace_convert::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = trace_convert::cli::Cli::parse();
    match trace_convert::cli::execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Broken pipe (e.g. `| head`) is not an error worth shouting about.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("trace-convert: {e:#}");
            ExitCode::from(1)
        }
    }
}
