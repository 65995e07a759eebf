//! One Redis node: how a connection to it is made, and how a failure on it reads.

use redis::{ConnectionAddr, RedisResult};

/// A TCP address, over TLS (verified against the roots or the CA given) when `tls`.
pub(super) fn tcp_addr(host: &str, port: u16, tls: bool) -> ConnectionAddr {
    if tls {
        ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host.to_owned(), port)
    }
}

/// A client for `addr` with these credentials, and the certificates over TLS.
pub(super) fn client_for(
    addr: ConnectionAddr,
    (username, password): (Option<&str>, Option<&str>),
    certificates: Option<&redis::TlsCertificates>,
) -> RedisResult<redis::Client> {
    let tls = matches!(addr, ConnectionAddr::TcpTls { .. });
    let mut info = redis::IntoConnectionInfo::into_connection_info(addr)?;
    let mut settings = info.redis_settings().clone();
    if let Some(username) = username {
        settings = settings.set_username(username);
    }
    if let Some(password) = password {
        settings = settings.set_password(password);
    }
    info = info.set_redis_settings(settings);
    match certificates {
        Some(c) if tls => redis::Client::build_with_tls(info, c.clone()),
        _ => redis::Client::open(info),
    }
}

/// A failure that means Redis is not there (or hung), not a refused command.
pub(super) fn shows_down(e: &redis::RedisError) -> bool {
    e.is_timeout() || e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped()
}
