//! The `queuewatch` binary: `run`, `check` and `simulate`.
//!
//! Exit codes: 0 clean stop, 2 bad usage or configuration, 1 fatal runtime error.

#[cfg(feature = "simulator")]
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[cfg(feature = "simulator")]
use anyhow::Context;
use clap::{Parser, Subcommand};
use queuewatch::config::{ConfigError, Settings, SHOWN_PROBLEMS};
use queuewatch::logs::LogFormat;

/// Watches Genesys Cloud queues: polls position and wait time within rate
/// limits, keeps a bounded history per queue, and hands every result to callbacks.
#[derive(Debug, Parser)]
#[command(name = "queuewatch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as `text` (for people) or `json` (one object per line, for
    /// log shippers). `RUST_LOG` sets the filter.
    #[arg(
        long,
        global = true,
        env = "QUEUEWATCH_LOG_FORMAT",
        default_value = "text",
        value_parser = parse_log_format
    )]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Poll every configured queue until SIGINT/SIGTERM (or `--for`).
    Run {
        /// The settings file.
        #[arg(long, default_value = "settings.yaml")]
        config: PathBuf,
        /// Stop cleanly after this long (e.g. `30s`, `5m`).
        #[arg(long = "for", value_parser = parse_duration)]
        run_for: Option<Duration>,
    },
    /// Validate the settings file and print a summary.
    Check {
        /// The settings file.
        #[arg(long, default_value = "settings.yaml")]
        config: PathBuf,
    },
    /// Run the built-in Genesys simulator alone.
    #[cfg(feature = "simulator")]
    Simulate(SimulateArgs),
}

/// Options of `queuewatch simulate`.
#[cfg(feature = "simulator")]
#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8089")]
    bind: SocketAddr,
    /// Serve the queues of this settings file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve this queue id (repeatable).
    #[arg(long = "queue")]
    queues: Vec<String>,
    /// Also serve this many generated queue ids (at most 100000).
    #[arg(long, default_value_t = 0)]
    generate: usize,
    /// Per-token request limit per minute; 0 turns the limit off.
    #[arg(long, default_value_t = 300)]
    rate_limit: u32,
    /// Lifetime of issued tokens (`expires_in`).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    token_lifetime: Duration,
    /// Seed for the queue model (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    text.parse()
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logger = queuewatch::logs::builder(cli.log_format).build();
    // A client's malformed request is logged at debug, not as our error.
    let _ = queuewatch::web::QuietClientErrors::install(logger);
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Run { config, run_for } => run(&config, run_for),
        #[cfg(feature = "simulator")]
        Command::Simulate(args) => simulate(args),
    }
}

/// Loads settings, printing every problem and mapping failure to exit code 2.
fn load(path: &std::path::Path) -> Result<Settings, ExitCode> {
    Settings::load(path).map_err(|err| {
        match &err {
            ConfigError::Invalid(problems) => {
                eprintln!("{}: {} problem(s):", path.display(), problems.len());
                for problem in problems.iter().take(SHOWN_PROBLEMS) {
                    eprintln!("  {problem}");
                }
                if problems.len() > SHOWN_PROBLEMS {
                    eprintln!("  ... and {} more", problems.len() - SHOWN_PROBLEMS);
                }
            }
            other => eprintln!("{other}"),
        }
        ExitCode::from(2)
    })
}

fn check(path: &std::path::Path) -> ExitCode {
    let settings = match load(path) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if settings.genesys.is_simulated() && !cfg!(feature = "simulator") {
        eprintln!(
            "{}: {}",
            path.display(),
            queuewatch::StartError::NoSimulator
        );
        return ExitCode::from(2);
    }
    print!("{}", summary(path, &settings));
    ExitCode::SUCCESS
}

/// What `check` prints: the effective setup in a few lines.
fn summary(path: &std::path::Path, settings: &Settings) -> String {
    use std::fmt::Write;
    let g = &settings.genesys;
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", path.display());
    let _ = writeln!(
        out,
        "  queues:      {} (source {})",
        settings.queues.len(),
        settings.poll.source
    );
    if g.is_simulated() {
        let _ = writeln!(
            out,
            "  genesys:     simulated (built-in simulator on a free loopback port; no credentials)"
        );
    } else {
        let _ = writeln!(out, "  api host:    {}", g.api_base().unwrap_or_default());
        let _ = writeln!(out, "  login host:  {}", g.login_base().unwrap_or_default());
        let _ = writeln!(
            out,
            "  credentials: ${} / ${}",
            g.client_id_env, g.client_secret_env
        );
    }
    let _ = writeln!(out, "  budget:      {}", settings.budget());
    let callbacks: Vec<&str> = settings.callbacks.iter().map(|c| c.kind()).collect();
    let _ = writeln!(
        out,
        "  callbacks:   {}",
        if callbacks.is_empty() {
            "none".to_string()
        } else {
            callbacks.join(", ")
        }
    );
    let http = settings
        .http
        .bind
        .map_or("disabled".to_string(), |b| b.to_string());
    let _ = writeln!(out, "  http:        {http}");
    for warning in settings.warnings() {
        let _ = writeln!(out, "  warning:     {warning}");
    }
    out
}

fn run(path: &std::path::Path, run_for: Option<Duration>) -> ExitCode {
    let settings = match load(path) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    actix_rt::System::new().block_on(async move {
        let handle = match queuewatch::QueueWatch::new(settings).start().await {
            Ok(handle) => handle,
            Err(error) if error.is_config() => {
                eprintln!("{}: {error}", path.display());
                return ExitCode::from(2);
            }
            Err(error) => {
                log::error!("cannot start: {error}");
                return ExitCode::from(1);
            }
        };
        let reloads = reload_on_sighup(handle.clone(), path.to_path_buf());
        let outcome = tokio::select! {
            () = reloads => unreachable!("reloading never ends"),
            signal = stop_signal() => {
                log::info!("{signal}: stopping");
                Ok(())
            }
            () = sleep_or_forever(run_for) => {
                log::info!("--for elapsed: stopping");
                Ok(())
            }
            reason = handle.fatal() => Err(reason),
        };
        handle.shutdown().await;
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(reason) => {
                log::error!("fatal: {reason}");
                ExitCode::from(1)
            }
        }
    })
}

/// Reloads the settings file on every SIGHUP; an invalid file is refused
/// with its problems logged, and the running set is kept.
async fn reload_on_sighup(handle: queuewatch::Handle, path: PathBuf) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut hangups) = signal(SignalKind::hangup()) {
            while hangups.recv().await.is_some() {
                log::info!("SIGHUP: reloading {}", path.display());
                if let Err(err) = handle.reload_file(&path).await {
                    log::error!("reload refused, keeping the running queues: {err}");
                }
            }
        }
    }
    let _ = (&handle, &path);
    std::future::pending().await
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

/// Resolves on SIGINT or SIGTERM with the signal's name.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// Most queue ids `simulate --generate` makes up (as many as a settings file may list).
#[cfg(feature = "simulator")]
const MAX_GENERATE: usize = queuewatch::config::MAX_QUEUES;

/// Queues `simulate` makes up when given no queue flags and no ./settings.yaml.
#[cfg(feature = "simulator")]
const DEFAULT_GENERATED: usize = 5;

#[cfg(feature = "simulator")]
fn simulate(args: SimulateArgs) -> ExitCode {
    if args.generate > MAX_GENERATE {
        eprintln!(
            "simulate: --generate {} is above the {MAX_GENERATE} maximum",
            args.generate
        );
        return ExitCode::from(2);
    }
    let mut ids = args.queues.clone();
    if let Some(path) = &args.config {
        match load(path) {
            Ok(settings) => ids.extend(settings.queues.into_iter().map(|q| String::from(q.id))),
            Err(code) => return code,
        }
    }
    ids.extend((0..args.generate).map(|_| uuid::Uuid::new_v4().to_string()));
    if ids.is_empty() {
        // No queue flags: the queues of ./settings.yaml, else a few made up.
        let default = std::path::Path::new("settings.yaml");
        if default.is_file() {
            match load(default) {
                Ok(settings) => ids.extend(settings.queues.into_iter().map(|q| q.id.to_string())),
                Err(code) => return code,
            }
            println!(
                "no queue flags: serving the {} queue(s) of ./settings.yaml",
                ids.len()
            );
        } else {
            ids.extend((0..DEFAULT_GENERATED).map(|_| uuid::Uuid::new_v4().to_string()));
            println!(
                "no queue flags and no ./settings.yaml: serving {DEFAULT_GENERATED} generated queue(s) \
                 (--queue ID, --generate N or --config FILE choose others)"
            );
        }
    }
    match serve_simulator(args, ids) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("simulate: {err:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(feature = "simulator")]
fn serve_simulator(args: SimulateArgs, ids: Vec<String>) -> anyhow::Result<()> {
    use queuewatch::simulator::{self, SimulatorConfig};
    let mut config = SimulatorConfig::with_queues(ids.clone());
    config.rate_limit_per_minute = (args.rate_limit > 0).then_some(args.rate_limit);
    config.token_lifetime = args.token_lifetime;
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    let (client_id, client_secret) = (config.client_id.clone(), config.client_secret.clone());
    actix_rt::System::new().block_on(async move {
        let sim = simulator::start(config, args.bind)
            .await
            .with_context(|| format!("binding {}", args.bind))?;
        let base = sim.base_url();
        println!("Genesys simulator on {base} serving {} queue(s)", ids.len());
        for id in ids.iter().take(10) {
            println!("  queue {id}");
        }
        println!("Try:");
        println!("  curl -s -u {client_id}:{client_secret} -d grant_type=client_credentials {base}/oauth/token");
        println!("  curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/v2/guest/messaging/queues/{}/position", ids[0]);
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        sim.stop().await;
        Ok(())
    })
}
