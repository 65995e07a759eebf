//! The portal client's address: the socket's peer, unless that peer is a trusted proxy
//! (`--portal-trusted-proxies`), in which case the right-most address of the one header the
//! proxies write (`--portal-client-header`: `X-Forwarded-For` or `Forwarded`) that is not
//! itself a trusted proxy. A client can write anything into either header, so only the hops
//! trusted proxies appended are believed (read right to left, stopping at the first that is
//! not a proxy's), and the other header is never read; the throttles key on it.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::http::Client;

/// The header the trusted proxies write the client's address into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientHeader {
    #[default]
    XForwardedFor,
    /// RFC 7239's `Forwarded: for=…`.
    Forwarded,
}

impl ClientHeader {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Some(Self::XForwardedFor),
            "forwarded" => Some(Self::Forwarded),
            _ => None,
        }
    }
}

/// The networks whose peers may name the client, and the header they name it in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<IpNet>, pub ClientHeader);

impl TrustedProxies {
    /// A comma-separated list of CIDRs (or single addresses).
    pub fn parse(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{p}` is not a CIDR or an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|nets| Self(nets, ClientHeader::default()))
    }

    /// The same proxies, writing the client into `header`.
    pub fn reading(self, header: ClientHeader) -> Self {
        Self(self.0, header)
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client behind `peer`, as `headers` tell it when `peer` is trusted.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops = match self.1 {
            ClientHeader::XForwardedFor => x_forwarded_for(headers),
            ClientHeader::Forwarded => forwarded(headers),
        };
        // Right to left: each hop a trusted proxy appended is read, until the first that is
        // not a proxy's: the client. What stands left of it (the client's own writing) is never
        // read; a hop that does not read ends the walk at the last one that did.
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(addr) = hop else {
                break;
            };
            client = *addr;
            if !self.trusts(*addr) {
                break;
            }
        }
        client
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// The `for=` nodes of every `Forwarded` header, in order (`None` for one that does not read:
/// `unknown`, an obfuscated name, junk).
fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("forwarded") {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',') {
            for pair in element.split(';') {
                let Some((key, value)) = pair.trim().split_once('=') else {
                    continue;
                };
                if key.trim().eq_ignore_ascii_case("for") {
                    hops.push(node(value.trim().trim_matches('"')));
                }
            }
        }
    }
    hops
}

/// A `Forwarded` node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn node(s: &str) -> Option<IpAddr> {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok().map(canonical);
    }
    if let Ok(addr) = s.parse::<IpAddr>() {
        return Some(canonical(addr));
    }
    let host = s.rsplit_once(':').map_or(s, |(h, _)| h);
    host.parse().ok().map(canonical)
}

/// The hops of every `X-Forwarded-For` header, in order (`None` for one that does not read).
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for hop in value.split(',') {
            hops.push(hop.trim().parse::<IpAddr>().ok().map(canonical));
        }
    }
    hops
}

/// The client's address, as the portal counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Puts the [`ClientAddr`] of every request in its extensions.
pub async fn resolve(
    State(trusted): State<TrustedProxies>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<Client>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| canonical(c.addr.ip()));
    let client = trusted.client(peer, req.headers());
    req.extensions_mut().insert(ClientAddr(client));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_a_trusted_peer_names_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, ::1").unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(trusted.client(stranger, &h), stranger);
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            trusted.client(proxy, &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            trusted.client("::1".parse().unwrap(), &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        // The client wrote a forged first hop; our two proxies appended the real one and theirs.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(
            trusted.client(proxy, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // Junk the client wrote, left of the real hop, is never read.
        let junk = headers(&[("x-forwarded-for", "nonsense, 203.0.113.9")]);
        assert_eq!(
            trusted.client(proxy, &junk),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // The other header is not read at all: a client cannot choose its address with it.
        let forged = headers(&[
            ("forwarded", "for=198.51.100.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            trusted.client(proxy, &forged),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let rfc = trusted.clone().reading(ClientHeader::Forwarded);
        let f = headers(&[(
            "forwarded",
            "for=1.2.3.4, for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.2",
        )]);
        assert_eq!(
            rfc.client(proxy, &f),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            rfc.client(proxy, &forged),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // A right-most hop that does not read: the proxy itself is the client.
        let unknown = headers(&[("forwarded", "for=1.2.3.4, for=unknown")]);
        assert_eq!(rfc.client(proxy, &unknown), proxy);
    }

    #[test]
    fn proxies_are_cidrs_or_addresses() {
        assert!(TrustedProxies::parse("10.0.0.0/8,192.168.1.1, 2001:db8::/32").is_ok());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.example").is_err());
        assert_eq!(
            TrustedProxies::parse("").unwrap(),
            TrustedProxies::default()
        );
    }
}
