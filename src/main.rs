use std::process::ExitCode;

use clap::Parser;

use etagstore::cli::Cli;
use etagstore::error;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return error::report_usage(&e, subcommand_named().as_deref()),
    };
    match etagstore::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`etagstore get k | head -c1`) is not a failure.
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Text from outside (a server, a file name) may hold terminal
            // escapes: they are shown, never sent to the terminal.
            eprintln!("error: {}", error::escape_controls(&format!("{e:#}")));
            ExitCode::from(error::exit_code(&e))
        }
    }
}

/// The first argument that names a subcommand, for usage errors: only
/// reached when the command line did not parse.
fn subcommand_named() -> Option<String> {
    use clap::CommandFactory;
    let command = Cli::command();
    std::env::args().skip(1).find_map(|arg| {
        command
            .find_subcommand(&arg)
            .map(|sub| sub.get_name().to_string())
    })
}
