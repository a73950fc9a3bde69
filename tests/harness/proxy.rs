//! A TCP proxy a test controls: put it between the code under test and a real service to
//! cut the service off (every open connection dropped, new ones refused), to black-hole it
//! (connections stay open and swallow every byte, nothing ever answers: a network that died
//! silently), and bring it back, without stopping the service other tests share.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forwards both ways.
    Open,
    /// Drops every connection and refuses new ones.
    Cut,
    /// Keeps connections open, reads and discards what clients send, never answers.
    BlackHole,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding a local port to `upstream`.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, watcher) = watch::channel(Mode::Open);
        let upstream = upstream.to_owned();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let current = *watcher.borrow();
                match current {
                    Mode::Cut => drop(client),
                    Mode::BlackHole => {
                        tokio::spawn(swallow(client, watcher.clone()));
                    }
                    Mode::Open => {
                        tokio::spawn(forward(client, upstream.clone(), watcher.clone()));
                    }
                }
            }
        });
        Self { addr, mode, accept }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Stops answering without closing anything: open connections stop forwarding and
    /// swallow what they are sent, new ones are accepted and swallow too. Connections
    /// black-holed stay so after [`Proxy::restore`], as after a real network failure.
    pub fn black_hole(&self) {
        self.mode.send_replace(Mode::BlackHole);
    }

    /// Accepts and forwards new connections again.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Open);
    }
}

/// Forwards `client` to `upstream` until the proxy is cut or black-holed.
async fn forward(mut client: TcpStream, upstream: String, mut watcher: watch::Receiver<Mode>) {
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let changed = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => None,
        mode = watcher.wait_for(|m| *m != Mode::Open) => mode.ok().map(|m| *m),
    };
    drop(server);
    if changed == Some(Mode::BlackHole) {
        swallow(client, watcher).await;
    }
}

/// Reads and discards what `client` sends, never answering, until the proxy is cut or
/// dropped or the client leaves.
async fn swallow(mut client: TcpStream, mut watcher: watch::Receiver<Mode>) {
    let mut sink = tokio::io::sink();
    tokio::select! {
        _ = tokio::io::copy(&mut client, &mut sink) => {}
        _ = watcher.wait_for(|m| *m == Mode::Cut) => {}
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
