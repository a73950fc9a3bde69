//! The local runner as a real process (`market-data-local`), for tests that stop it the way a
//! developer or an operating system does: SIGTERM, or SIGKILL with no chance to clean up.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The runner binary of this build, built (or brought up to date) once per test process with
/// the very command `local/test.sh` uses, so no stale binary is ever the one tested.
pub fn binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // target/<profile>/deps/<test binary> → target/<profile>/market-data-local
            let exe = std::env::current_exe().expect("the test binary's path");
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("the test binary sits in <target>/<profile>/deps");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--workspace", "--bins", "--locked"])
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .env("CARGO_TARGET_DIR", profile_dir.parent().expect("<target>"))
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building market-data-local failed");
            let binary = profile_dir.join("market-data-local");
            assert!(binary.exists(), "{} was not built", binary.display());
            binary
        })
        .clone()
}

/// A free port on the loopback interface (free when asked; the runner binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `market-data-local serve`.
pub struct Runner {
    child: Option<Child>,
    /// Where it serves, `http://127.0.0.1:PORT`.
    pub base_url: String,
    log: PathBuf,
}

impl Runner {
    /// Starts the runner with exactly `env` (nothing inherited but `PATH`), logging to a file
    /// under `log_dir`, and waits (up to 60 s) until `/health` answers.
    pub async fn start(env: &[(&str, String)], log_dir: &std::path::Path, name: &str) -> Self {
        let port = free_port();
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("a log file");
        let err = out.try_clone().expect("the log file again");
        let mut command = Command::new(binary());
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOCAL_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("market-data-local starts");
        let runner = Self {
            child: Some(child),
            base_url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{}/health", runner.base_url)).send().await
                && r.status().is_success()
            {
                return runner;
            }
            assert!(
                Instant::now() < deadline,
                "the runner did not serve within 60 s:\n{}",
                runner.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What it wrote so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (up to `within`) for it to exit; its exit status.
    pub async fn terminate(mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM sent");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("the child's status") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the runner did not stop within {within:?} of SIGTERM:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGKILL: no clean-up of any kind, as an out-of-memory kill or a power cut.
    pub fn kill(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL sent");
        child.wait().expect("reaped");
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
