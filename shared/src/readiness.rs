//! Readiness: each dependency a function uses, what serves it, and whether it answers.
//!
//! The wiring registers one [`Check`] per adapter it builds, so a function reports exactly
//! the dependencies it has; `/ready` and the runner's banner read them from here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// Longest a readiness check waits for any one dependency.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Which adapter serves a port, for the start-up banner and readiness.
#[derive(Debug, Clone, Serialize)]
pub struct PortAdapter {
    /// The port (`store`, `cache`, `events`, `provider:finnhub`, ...).
    pub port: &'static str,
    /// The adapter serving it, with its non-secret settings.
    pub adapter: String,
}

/// Whether a dependency can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyStatus {
    /// It answered.
    Up,
    /// It failed or did not answer in time.
    Down,
    /// It is not configured; the function works without it.
    NotConfigured,
}

impl DependencyStatus {
    /// The name `/ready` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::NotConfigured => "not_configured",
        }
    }
}

/// The state of one dependency.
#[derive(Debug, Clone, Serialize)]
pub struct DependencyState {
    /// The port it serves.
    pub port: &'static str,
    /// The adapter serving it.
    pub adapter: String,
    /// Whether it can be used.
    pub status: DependencyStatus,
    /// Why it is down, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl DependencyState {
    /// Whether the dependency is usable.
    pub fn is_up(&self) -> bool {
        self.status == DependencyStatus::Up
    }
}

type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// How a dependency is checked.
#[derive(Clone)]
enum Probe {
    /// Asks the dependency.
    Ask(Arc<dyn Fn() -> ProbeFuture + Send + Sync>),
    /// Known without asking.
    Fixed(DependencyStatus),
}

/// One dependency and how to check it.
#[derive(Clone)]
pub struct Check {
    port: PortAdapter,
    probe: Probe,
}

impl Check {
    /// A dependency checked by calling `probe`, whose error text becomes the detail.
    pub fn probe<F, Fut, E>(port: &'static str, adapter: String, probe: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        Self {
            port: PortAdapter { port, adapter },
            probe: Probe::Ask(Arc::new(move || {
                let fut = probe();
                Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
            })),
        }
    }

    /// A dependency whose state is known without asking (a configured provider is up, an
    /// unconfigured one is `not_configured`).
    pub fn fixed(port: &'static str, adapter: String, status: DependencyStatus) -> Self {
        Self {
            port: PortAdapter { port, adapter },
            probe: Probe::Fixed(status),
        }
    }

    /// The dependency and its adapter.
    pub fn port(&self) -> &PortAdapter {
        &self.port
    }

    async fn run(&self) -> DependencyState {
        let (status, detail) = match &self.probe {
            Probe::Fixed(status) => (*status, None),
            Probe::Ask(probe) => match tokio::time::timeout(CHECK_TIMEOUT, probe()).await {
                Ok(Ok(())) => (DependencyStatus::Up, None),
                Ok(Err(detail)) => (DependencyStatus::Down, Some(detail)),
                Err(_) => (
                    DependencyStatus::Down,
                    Some(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
                ),
            },
        };
        DependencyState {
            port: self.port.port,
            adapter: self.port.adapter.clone(),
            status,
            detail,
        }
    }
}

/// The dependencies of one function, checked together.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<[Check]>,
}

impl Readiness {
    /// Readiness over `checks`, reported in that order.
    pub fn new(checks: Vec<Check>) -> Self {
        Self {
            checks: checks.into(),
        }
    }

    /// Each dependency and its adapter, without asking any of them.
    pub fn ports(&self) -> impl Iterator<Item = &PortAdapter> {
        self.checks.iter().map(|c| &c.port)
    }

    /// Checks every dependency at once, each bounded by [`CHECK_TIMEOUT`].
    pub async fn check(&self) -> Vec<DependencyState> {
        futures::future::join_all(self.checks.iter().map(Check::run)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_check_reports_in_order_with_its_detail() {
        let readiness = Readiness::new(vec![
            Check::probe("store", "memory".into(), || async { Ok::<(), String>(()) }),
            Check::probe("cache", "redis".into(), || async {
                Err("refused".to_owned())
            }),
            Check::fixed(
                "provider:x",
                "not configured".into(),
                DependencyStatus::NotConfigured,
            ),
        ]);
        let states = readiness.check().await;
        let got: Vec<_> = states
            .iter()
            .map(|s| (s.port, s.status, s.detail.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("store", DependencyStatus::Up, None),
                ("cache", DependencyStatus::Down, Some("refused".to_owned())),
                ("provider:x", DependencyStatus::NotConfigured, None),
            ]
        );
    }
}
