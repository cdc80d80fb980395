//! The `sysbox-ro-webhook` binary: parses the command line and hands typed
//! configuration to the library.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use sysbox_ro_webhook::cli::{Cli, Command, Config, LogFormat};
use sysbox_ro_webhook::{agent, audit, certs, check, explain, logging, serve};

// The allocator: see BENCHMARKS.md ("Memory after large reviews") for the
// figures that chose it.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc returns freed memory from a background thread after a second,
/// instead of only when a later allocation happens to pass by.
#[cfg(feature = "jemalloc")]
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The multi-threaded async runtime of `serve` and `agent`; `None` (said on
/// stderr) when it cannot start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let long_running = matches!(cli.command, Command::Serve(_) | Command::Agent(_));
    let format = match cli.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    let flusher = logging::init(format, &cli.log, long_running);
    let config = match cli.command.to_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One crypto provider for the server and the Kubernetes client alike.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let _ = provider.as_ref().clone().install_default();

    match config {
        Config::Serve(config) => {
            let Some(runtime) = runtime() else {
                return ExitCode::FAILURE;
            };
            let stopped = runtime.block_on(serve::run(*config, provider));
            drop(runtime);
            drop(flusher); // the last log lines before the error below
            match stopped {
                Ok(serve::Stopped::Clean) => ExitCode::SUCCESS,
                Ok(serve::Stopped::Dropped(n)) => {
                    eprintln!("error: stopped with {n} request(s) unanswered");
                    ExitCode::from(3)
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Config::Check(config) => check::run(&config),
        Config::Audit(config) => audit::run(&config),
        Config::Certs(config) => match certs::generate(&config) {
            Ok(written) => {
                for f in &written.files {
                    eprintln!("wrote {}", f.display());
                }
                eprintln!("serving certificate for: {}", written.dns_names.join(", "));
                eprintln!("caBundle (base64 of ca.crt):");
                println!("{}", written.ca_bundle);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Config::Agent(config) => {
            let Some(runtime) = runtime() else {
                return ExitCode::FAILURE;
            };
            let stopped = runtime.block_on(agent::run(*config));
            drop(runtime);
            drop(flusher);
            match stopped {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Config::Explain(rule) => match explain::explain(&rule) {
            Ok(doc) => {
                print!("{doc}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Config::Version => {
            println!("sysbox-ro-webhook {} (Kubernetes API types v1.33+)", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}
