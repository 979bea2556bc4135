//! Serving the management API on a Unix socket (and optionally loopback TCP), and
//! connecting to it.
//!
//! The socket's directory is created if missing; a stale socket file (no one
//! listening) is replaced, a live one is refused (another `sluiced` owns it). The
//! socket gets the configured mode (0660: the owner and its group, e.g. a
//! `sluice` group of operators). The file is removed when the server stops.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_proto::sluice::mgmt::v1::management_client::ManagementClient;
use sluice_proto::sluice::mgmt::v1::management_server::ManagementServer;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig, Uri};

use super::{Service, Switch};
use crate::background::Background;

/// A running management server.
#[derive(Debug)]
pub struct Server {
    /// The socket path.
    pub socket: PathBuf,
    /// The TCP address, if serving TCP.
    pub tcp: Option<std::net::SocketAddr>,
    _thread: Background,
}

fn bind_unix(path: &Path, mode: u32) -> Result<std::os::unix::net::UnixListener, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("management: cannot create {}: {e} (set [management] socket)", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "management: {} is in use by a running sluiced; stop it or set another [management] socket",
                path.display()
            ));
        }
        std::fs::remove_file(path).map_err(|e| format!("management: cannot replace stale {}: {e}", path.display()))?;
    }
    let l = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("management: cannot listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("management: cannot set mode {mode:o} on {}: {e}", path.display()))?;
    l.set_nonblocking(true).map_err(|e| format!("management: {e}"))?;
    Ok(l)
}

/// TLS for the TCP listener: PEM files.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// Certificate (chain).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// When set, clients must present a certificate this CA signed.
    pub client_ca: Option<PathBuf>,
}

fn read_pem(what: &str, p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("cannot read the {what} {}: {e}", p.display()))
}

impl ServerTls {
    fn config(&self) -> Result<ServerTlsConfig, String> {
        let id = Identity::from_pem(read_pem("TLS certificate", &self.cert)?, read_pem("TLS key", &self.key)?);
        let mut c = ServerTlsConfig::new().identity(id);
        if let Some(ca) = &self.client_ca {
            c = c.client_ca_root(Certificate::from_pem(read_pem("client CA", ca)?));
        }
        Ok(c)
    }
}

/// TLS for a client: the CA that signed the server's certificate, the name in it,
/// and a client certificate when the server asks for one.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM CA certificate.
    pub ca: Option<PathBuf>,
    /// PEM client certificate and key.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The server name to verify (default: the address's host).
    pub domain: Option<String>,
}

impl Server {
    /// Serve `switch` on `socket` (mode `mode`) and on `tcp` if given (with TLS
    /// when `tls` is given), from a tokio runtime of its own (two threads, on
    /// control's core like the caller).
    pub fn start(
        switch: Arc<Switch>,
        socket: &Path,
        mode: u32,
        tcp: Option<&str>,
        tls: Option<&ServerTls>,
    ) -> Result<Server, String> {
        let tls = tls.map(ServerTls::config).transpose().map_err(|e| format!("management: {e}"))?;
        let unix = bind_unix(socket, mode)?;
        let tcp = match tcp {
            None => None,
            Some(a) => {
                let l = std::net::TcpListener::bind(a).map_err(|e| format!("management: cannot listen on {a}: {e}"))?;
                l.set_nonblocking(true).map_err(|e| format!("management: {e}"))?;
                Some(l)
            }
        };
        let tcp_addr = tcp.as_ref().and_then(|l| l.local_addr().ok());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(4)
            .thread_name("sluice-mgmt")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the management runtime: {e}"))?;
        let svc = ManagementServer::new(Service(switch));
        let path = socket.to_path_buf();
        let thread = Background::spawn("sluice-mgmt", move |stop| {
            rt.block_on(async move {
                let unix = match tokio::net::UnixListener::from_std(unix) {
                    Ok(l) => l,
                    Err(e) => return eprintln!("sluiced: management socket: {e}"),
                };
                let on_unix =
                    tonic::transport::Server::builder().add_service(svc.clone()).serve_with_incoming_shutdown(
                        tokio_stream::wrappers::UnixListenerStream::new(unix),
                        stop.clone().stopped(),
                    );
                let on_tcp = async {
                    let Some(l) = tcp else { return Ok(()) };
                    let l = tokio::net::TcpListener::from_std(l).map_err(|e| e.to_string())?;
                    let mut builder = tonic::transport::Server::builder();
                    if let Some(t) = tls {
                        builder = builder.tls_config(t).map_err(|e| format!("TLS: {e}"))?;
                    }
                    builder
                        .add_service(svc)
                        .serve_with_incoming_shutdown(
                            tokio_stream::wrappers::TcpListenerStream::new(l),
                            stop.clone().stopped(),
                        )
                        .await
                        .map_err(|e| e.to_string())
                };
                let (a, b) = tokio::join!(on_unix, on_tcp);
                if let Err(e) = a.map_err(|e| e.to_string()).and(b) {
                    eprintln!("sluiced: management server failed: {e}");
                }
            });
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
            let _ = std::fs::remove_file(&path);
        })
        .map_err(|e| format!("cannot start the management thread: {e}"))?;
        Ok(Server { socket: socket.to_path_buf(), tcp: tcp_addr, _thread: thread })
    }
}

/// A client of the API at `socket` (a Unix socket path), or at `address`
/// (`host:port`, TCP; with TLS when `tls` is given) when given.
pub async fn connect(
    socket: &Path,
    address: Option<&str>,
    tls: Option<&ClientTls>,
) -> Result<ManagementClient<Channel>, String> {
    let channel = match address {
        Some(a) => {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let mut ep =
                Endpoint::from_shared(format!("{scheme}://{a}")).map_err(|e| format!("bad address {a:?}: {e}"))?;
            if let Some(t) = tls {
                let mut c = ClientTlsConfig::new();
                if let Some(ca) = &t.ca {
                    c = c.ca_certificate(Certificate::from_pem(read_pem("CA certificate", ca)?));
                }
                if let Some((cert, key)) = &t.identity {
                    c = c.identity(Identity::from_pem(read_pem("certificate", cert)?, read_pem("key", key)?));
                }
                if let Some(d) = &t.domain {
                    c = c.domain_name(d.clone());
                }
                ep = ep.tls_config(c).map_err(|e| format!("TLS: {e}"))?;
            }
            ep.connect().await.map_err(|e| {
                use std::error::Error as _;
                let cause = e.source().map(|s| format!(": {s}")).unwrap_or_default();
                format!(
                    "cannot reach sluiced at {a}: {e}{cause}. Is it running with [management] tcp_address, and do \
                     --tls-ca / --tls-cert / --tls-key match its TLS settings?"
                )
            })?
        }
        None => {
            let path = socket.to_path_buf();
            // The URI is required by the API and ignored: the connector dials the socket.
            Endpoint::from_static("http://sluiced.local")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let s = tokio::net::UnixStream::connect(&path).await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                    }
                }))
                .await
                .map_err(|e| {
                    let why = std::fs::metadata(socket)
                        .map(|_| "the socket exists but nothing answers (a stale file?) or it is not yours (permissions)".to_owned())
                        .unwrap_or_else(|_| "no such socket".to_owned());
                    format!(
                        "cannot reach sluiced at {}: {why} ({e}). Is sluiced running? Pass --socket or set SLUICE_SOCKET",
                        socket.display()
                    )
                })?
        }
    };
    Ok(ManagementClient::new(channel))
}
