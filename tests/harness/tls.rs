//! Servers that speak TLS, for the tests of encrypted links: a certificate authority made for
//! the test (with `openssl`), a PostgreSQL cluster of the test's own with `ssl=on`, and a
//! `redis-server` with TLS only and a password. Each is stopped and its files removed when
//! the value is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::redis::free_port;
use crate::unique_name;

/// A directory of the test's own under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates it, readable by every user (the `postgres` user reads the certificates).
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(unique_name("mdb_tls"));
        std::fs::create_dir_all(&path).expect("create the test's directory");
        run(Command::new("chmod").arg("755").arg(&path));
        Self(path)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA made for one test, and a server certificate it signed for `127.0.0.1` and
/// `localhost`.
pub struct TestCa {
    /// The CA's certificate (PEM): what a client trusts.
    pub ca_file: PathBuf,
    /// The server's certificate (PEM).
    pub cert_file: PathBuf,
    /// The server's private key (PEM).
    pub key_file: PathBuf,
}

impl TestCa {
    /// Makes the CA `name` and its server certificate in `dir`.
    pub fn make(dir: &Path, name: &str) -> Self {
        let file = |suffix: &str| dir.join(format!("{name}-{suffix}"));
        let (ca_key, ca_file) = (file("ca.key"), file("ca.pem"));
        let (key_file, csr, cert_file, ext) = (
            file("server.key"),
            file("server.csr"),
            file("server.pem"),
            file("server.ext"),
        );
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name} test CA"),
            ])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_file));
        run(Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-subj", "/CN=127.0.0.1"])
            .arg("-keyout")
            .arg(&key_file)
            .arg("-out")
            .arg(&csr));
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the extensions");
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_file)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert_file));
        Self {
            ca_file,
            cert_file,
            key_file,
        }
    }
}

/// The directory of Debian's PostgreSQL server binaries (the newest installed).
fn postgres_bindir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries in /usr/lib/postgresql (Debian's postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    dirs.pop().expect("an initdb under /usr/lib/postgresql")
}

/// `cmd` run as the `postgres` user (initdb refuses root).
fn as_postgres(program: &Path) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(program);
    cmd
}

/// A PostgreSQL cluster of the test's own on a free port, with `ssl=on` and the certificate
/// of [`TestCa`] `server`; trust authentication on loopback, over TLS or not, unless started
/// with [`TlsPostgres::start_with_password`].
pub struct TlsPostgres {
    child: Child,
    data: PathBuf,
    bindir: PathBuf,
    /// Its port.
    pub port: u16,
    /// The CA that signed its certificate, and a second CA that did not.
    pub ca: TestCa,
    /// A CA that did not sign the server's certificate.
    pub wrong_ca: TestCa,
    /// Its files; dropped last.
    _dir: TempDir,
}

impl TlsPostgres {
    /// Makes the certificates, runs `initdb` and starts the server; waits until it answers.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// As [`Self::start`], but TCP connections must log in with their password (SCRAM-SHA-256),
    /// and the `postgres` superuser's is `password`: a login with a password proves it (the
    /// shared server trusts loopback, so there any password logs in).
    pub async fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password)).await
    }

    async fn start_with(password: Option<&str>) -> Self {
        let dir = TempDir::new();
        let ca = TestCa::make(&dir.0, "right");
        let wrong_ca = TestCa::make(&dir.0, "wrong");
        let data = dir.0.join("data");
        let pwfile = dir.0.join("superuser-password");
        if let Some(password) = password {
            std::fs::write(&pwfile, password).expect("write the password file");
        }
        run(Command::new("chown").arg("-R").arg("postgres").arg(&dir.0));
        let bindir = postgres_bindir();
        let mut initdb = as_postgres(&bindir.join("initdb"));
        match password {
            None => initdb.args(["-A", "trust"]),
            Some(_) => initdb
                .args([
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--pwfile",
                ])
                .arg(&pwfile),
        };
        run(initdb
            .args(["-U", "postgres", "--no-sync", "-D"])
            .arg(&data));
        let port = free_port();
        let child = as_postgres(&bindir.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-k")
            .arg(&dir.0)
            .args(["-c", "ssl=on", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", ca.cert_file.display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", ca.key_file.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let server = Self {
            child,
            data,
            bindir,
            port,
            ca,
            wrong_ca,
            _dir: dir,
        };
        for _ in 0..200 {
            let ok = Command::new(server.bindir.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the TLS PostgreSQL did not start on port {port}");
    }

    /// The URL of its `postgres` database with `query` (`sslmode=…`) appended when not empty.
    pub fn url(&self, query: &str) -> String {
        let base = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        if query.is_empty() {
            base
        } else {
            format!("{base}?{query}")
        }
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` of the test's own that speaks only TLS (no plain port) and wants a
/// password, as ElastiCache with encryption in transit and an AUTH token does.
pub struct TlsRedis {
    child: Child,
    /// Its TLS port.
    pub port: u16,
    /// The CA that signed its certificate.
    pub ca: TestCa,
    /// Its files; dropped last.
    _dir: TempDir,
}

impl TlsRedis {
    /// Starts it with `password` and waits until it accepts connections.
    pub async fn start(password: &str) -> Self {
        let dir = TempDir::new();
        let ca = TestCa::make(&dir.0, "redis");
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--tls-cert-file")
            .arg(&ca.cert_file)
            .arg("--tls-key-file")
            .arg(&ca.key_file)
            .arg("--tls-ca-cert-file")
            .arg(&ca.ca_file)
            .args(["--tls-auth-clients", "no", "--requirepass", password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (local/test.sh installs it)");
        let server = Self {
            child,
            port,
            ca,
            _dir: dir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the TLS redis-server did not start on port {port}");
    }

    /// Its `rediss://` URL with `password`.
    pub fn url(&self, password: &str) -> String {
        format!("rediss://:{password}@127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
