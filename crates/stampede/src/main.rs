//! The `stampede` command: thin wiring over the library crates. Parsing flags, printing,
//! signals and exit codes live here; everything else is in a library.

mod cli;
mod cloud;
mod job;
mod limits;
mod load;
mod logs;
mod out_cloud;
mod progress;
mod server;
mod steps;
mod sut;

use std::process::ExitCode;

use clap::Parser;
use stampede_core::ExitCode as Code;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An error that knows its exit code.
#[derive(Debug)]
pub(crate) struct Failed {
    code: Code,
    message: String,
}

impl Failed {
    pub(crate) fn config(message: impl Into<String>) -> Failed {
        Failed {
            code: Code::InvalidConfig,
            message: message.into(),
        }
    }
    pub(crate) fn other(message: impl Into<String>) -> Failed {
        Failed {
            code: Code::Other,
            message: message.into(),
        }
    }
}

/// A password: STAMPEDE_PASSWORD, or else the first line of standard input (so that it
/// is never a command-line argument other users can see).
pub(crate) fn password() -> Result<String, Failed> {
    if let Ok(password) = std::env::var("STAMPEDE_PASSWORD") {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Failed::other(format!("cannot read the password from standard input: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(Failed::config(
            "no password: set STAMPEDE_PASSWORD or write it on standard input",
        ));
    }
    Ok(password)
}

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(error) => {
            // --help and --version are not errors; a bad flag is an invalid configuration.
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(Code::InvalidConfig.code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Err(failed) = logs::init(&args.log_level, args.log_format) {
        eprintln!("error: {}", failed.message);
        return ExitCode::from(failed.code.code());
    }
    let outcome = match args.command {
        cli::Command::Sut(args) => sut::run(args),
        cli::Command::Quick(args) => load::quick(args),
        cli::Command::Demo(args) => job::demo(args),
        cli::Command::Run(args) => job::run(args),
        cli::Command::Validate(args) => job::validate(args),
        cli::Command::Schema => job::schema(),
        cli::Command::Server(args) => server::run(args),
        cli::Command::Login(args) => cloud::login(args),
        cli::Command::Cloud(command) => cloud::cloud(command),
        cli::Command::Jobs(command) => cloud::jobs(command),
    };
    match outcome {
        Ok(code) => ExitCode::from(code.code()),
        Err(failed) => {
            eprintln!("error: {}", failed.message);
            ExitCode::from(failed.code.code())
        }
    }
}
