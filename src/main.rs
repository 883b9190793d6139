use std::process::ExitCode;

use etagstore::cli::{Cli, ErrorFormat};
use etagstore::error;

fn main() -> ExitCode {
    let cli = match Cli::parse_args() {
        Ok(cli) => cli,
        Err(e) => {
            // clap did not say which --error-format: read it as clap would have.
            let env = std::env::var_os("ETAGSTORE_ERROR_FORMAT");
            error::print_as_json(error::json_asked(std::env::args_os(), env));
            return error::report_usage(&e, subcommand_named().as_deref());
        }
    };
    error::print_as_json(cli.error_format == ErrorFormat::Json);
    match etagstore::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`etagstore get k | head -c1`) is not a failure.
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => error::report(&e),
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
