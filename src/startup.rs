//! Building and running the application, the same way for `main` and for the tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::service::Service;

/// How long in-flight requests get to finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(10);

pub struct Application {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Application {
    /// Opens and migrates the database and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = crate::store::connect(&config.database_url)
            .await
            .context("cannot open the database")?;
        let state = AppState {
            service: Service::new(store),
            default_country: config.default_country,
            default_language: config.default_language,
            request_timeout: config.request_timeout,
        };
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            router: http::router(state),
            tls: config.tls,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let service = self.router.into_make_service();
        match self.tls {
            Some(tls) => {
                tracing::info!(addr = %self.addr, "serving HTTPS");
                let handle = axum_server::Handle::new();
                let on_signal = handle.clone();
                tokio::spawn(async move {
                    shutdown.await;
                    on_signal.graceful_shutdown(Some(GRACE));
                });
                axum_server::from_tcp_rustls(
                    self.listener,
                    axum_server::tls_rustls::RustlsConfig::from_config(tls),
                )
                .handle(handle)
                .serve(service)
                .await
                .context("HTTPS server failed")
            }
            None => {
                tracing::info!(addr = %self.addr, "serving plain HTTP");
                let listener = tokio::net::TcpListener::from_std(self.listener)?;
                axum::serve(listener, service)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .context("HTTP server failed")
            }
        }
    }
}
