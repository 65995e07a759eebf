//! Wiring only: parse settings, set up logging, run the chosen command.

use std::io::IsTerminal;
use std::process::ExitCode;

use cps::cli::{
    CacheCommand, Cli, Command, LogFormat, OutboxCommand, SupportCommand, TokenCommand, describe,
};
use cps::commands;
use cps::config::Config;
use cps::setting::Invalid;
use cps::startup::Application;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match cli.log_format {
        // Colour codes only for a person at a terminal, not in collected logs.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).boxed(),
        // One object per line: the event's fields at the top level, the innermost span under
        // `span`, and every span it is in (the request's with its request id, the operation's
        // with its card number) under `spans`, outermost first.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(logs);
    #[cfg(feature = "otlp")]
    let (registry, traces) = match cli.otlp_endpoint.as_deref().map(cps::otlp::layer) {
        Some(Ok((provider, layer))) => (registry.with(Some(layer)), Some(provider)),
        Some(Err(problem)) => {
            eprintln!("cps: {}", describe(&problem));
            return ExitCode::from(2);
        }
        None => (registry.with(None), None),
    };
    registry.init();
    let code = run(cli);
    #[cfg(feature = "otlp")]
    if let Some(provider) = traces {
        // Sends the spans still batched.
        let _ = provider.shutdown();
    }
    code
}

fn run(cli: Cli) -> ExitCode {
    // One TLS provider for every client (PostgreSQL, Redis, ALCS) and the listeners.
    cps::tls::install_provider();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi { output } = &command {
        return write_openapi(output.as_deref());
    }
    // Needs no database: only the tokens file.
    if let Command::Support(SupportCommand::Token(TokenCommand::Add { name, role })) = &command {
        return commands::token_add(cli.settings.support_tokens_file.as_deref(), name, role);
    }
    let config = match cli.settings.config(matches!(command, Command::Serve)) {
        Ok(config) => config,
        Err(problem) => {
            eprintln!("cps: {}", describe(&problem));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cps: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let outcome = match command {
            Command::Serve => {
                return match serve(config)
                    .await
                    .map_err(anyhow::Error::downcast::<Invalid>)
                {
                    Ok(()) => ExitCode::SUCCESS,
                    // A setting found wrong only when building from it: as a checked one.
                    Err(Ok(problem)) => {
                        eprintln!("cps: {}", describe(&problem));
                        ExitCode::from(2)
                    }
                    Err(Err(e)) => {
                        eprintln!("cps: {e:#}");
                        ExitCode::FAILURE
                    }
                };
            }
            Command::Migrate => commands::migrate(&config).await,
            Command::Cache(CacheCommand::Rebuild { force, batch_size }) => {
                commands::rebuild(&config, force, batch_size).await
            }
            Command::Cache(CacheCommand::Verify { batch_size }) => {
                commands::verify(&config, batch_size).await
            }
            Command::Outbox { action: None } => commands::outbox(&config).await,
            Command::Outbox {
                action: Some(OutboxCommand::Retry),
            } => commands::outbox_retry(&config).await,
            // Done above, before the database was needed.
            Command::Openapi { .. } | Command::Support(_) => return ExitCode::SUCCESS,
        };
        outcome.unwrap_or_else(|e| {
            eprintln!("cps: {e}");
            e.exit_code()
        })
    })
}

/// The API's OpenAPI document, pretty-printed, to `output` or standard output.
fn write_openapi(output: Option<&std::path::Path>) -> ExitCode {
    let document = match cps::http::openapi().to_pretty_json() {
        Ok(document) => document + "\n",
        Err(e) => {
            eprintln!("cps: cannot write the OpenAPI document: {e}");
            return ExitCode::FAILURE;
        }
    };
    let written = match output {
        Some(path) => std::fs::write(path, document)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(document.as_bytes())
                .map_err(|e| e.to_string())
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cps: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown_signal()).await
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
