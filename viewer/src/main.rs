//! `hv-trace-view FILE`: the terminal timeline viewer on its own.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: hv-trace-view FILE   (.dat v6/v7, ftrace text or hvtrace ring dump; merged or not)\n       hv-trace-view --help | --version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = match args.as_slice() {
        [h] if h == "-h" || h == "--help" => {
            println!("{USAGE}\n\nKeys:");
            for l in viewer::ui::HELP {
                println!("  {l}");
            }
            return ExitCode::SUCCESS;
        }
        [v] if v == "-V" || v == "--version" => {
            println!("hv-trace-view {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        // A file whose name starts with '-' is reached as ./-name.
        [o] if o.starts_with('-') => {
            eprintln!("hv-trace-view: unknown option {o:?}\n{USAGE}");
            return ExitCode::from(2);
        }
        [p] => PathBuf::from(p),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match viewer::run_app(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hv-trace-view: {e:#}");
            ExitCode::FAILURE
        }
    }
}
