//! DNS through a real resolver (hickory): the TXT records of domain proofs (P11), and the
//! resolver settings the local SES receiving stand-in shares for SPF, DKIM and DMARC.
//!
//! The name servers are a setting (`DNS_SERVERS`: `ip` or `ip:port`, comma-separated); empty
//! means the system's (`/etc/resolv.conf`: in AWS the VPC's resolver). Nothing is cached: an
//! administrator who just published a record and presses "verify" must not get a stale "no".

use crate::ports::domains::{DomainProofs, ProofError};
use async_trait::async_trait;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Parses `DNS_SERVERS`: `ip` (port 53) or `ip:port` (`[v6]:port`), comma-separated.
pub fn parse_servers(text: &str) -> Result<Vec<SocketAddr>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| format!("DNS_SERVERS: {s:?} is not an address (ip or ip:port)"))
        })
        .collect()
}

/// The resolver's configuration: `servers` (UDP and TCP), or the system's when empty; no cache,
/// short timeouts.
pub fn resolver_config(servers: &[SocketAddr]) -> Result<(ResolverConfig, ResolverOpts), String> {
    let (config, mut opts) = if servers.is_empty() {
        hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| format!("the system's DNS settings: {e}"))?
    } else {
        let name_servers = servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        (
            ResolverConfig::from_name_servers(name_servers),
            ResolverOpts::default(),
        )
    };
    opts.cache_size = 0;
    opts.timeout = Duration::from_secs(3);
    opts.attempts = 2;
    Ok((config, opts))
}

/// Domain proofs by DNS TXT record (P11).
#[derive(Clone)]
pub struct DnsTxtProofs {
    resolver: TokioResolver,
}

impl DnsTxtProofs {
    /// A resolver on `servers` (the system's when empty).
    pub fn new(servers: &[SocketAddr]) -> Result<Self, String> {
        let (config, opts) = resolver_config(servers)?;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| format!("DNS resolver: {e}"))?;
        Ok(DnsTxtProofs { resolver })
    }

    /// From `DNS_SERVERS` (read once at start-up).
    pub fn from_env() -> Result<Self, String> {
        Self::new(&parse_servers(
            &std::env::var("DNS_SERVERS").unwrap_or_default(),
        )?)
    }
}

#[async_trait]
impl DomainProofs for DnsTxtProofs {
    async fn txt_records(&self, name: &str) -> Result<Vec<String>, ProofError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    hickory_resolver::proto::rr::RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(ProofError::Unavailable(format!("TXT {name}: {e}"))),
        }
    }
}
