//! A real DNS server on loopback for one test (Debian's dnsmasq, installed by
//! `infra/local/install.sh`): it serves the TXT records the test gives (domain proofs, SPF,
//! DMARC) and answers NXDOMAIN for every other name, as an authoritative server would. Changing
//! the records restarts it on the same port; it is ended by its PID when dropped.

use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// A dnsmasq process serving `records` on 127.0.0.1:`port`.
pub struct DnsServer {
    pub port: u16,
    records: Vec<(String, String)>,
    child: Option<Child>,
}

fn dnsmasq() -> String {
    std::env::var("CONTINUITY_DNSMASQ").unwrap_or_else(|_| "/usr/sbin/dnsmasq".into())
}

impl DnsServer {
    /// Starts a server with these TXT records (name, value).
    pub async fn start(records: &[(&str, &str)]) -> Self {
        let mut s = DnsServer {
            port: crate::free_port(),
            records: records
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        s.spawn().await;
        s
    }

    /// The name server setting (`DNS_SERVERS`) for it.
    pub fn servers(&self) -> Vec<std::net::SocketAddr> {
        vec![std::net::SocketAddr::from(([127, 0, 0, 1], self.port))]
    }

    /// Adds a TXT record (restarts the server on the same port).
    pub async fn add_txt(&mut self, name: &str, value: &str) {
        self.records.push((name.to_string(), value.to_string()));
        self.restart().await;
    }

    /// Replaces every record (restarts the server on the same port).
    pub async fn set_records(&mut self, records: &[(&str, &str)]) {
        self.records = records
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        self.restart().await;
    }

    async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let mut cmd = Command::new(dnsmasq());
        cmd.args([
            "--no-daemon",
            "--keep-in-foreground",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            // Every name is local: what is not listed is NXDOMAIN, never forwarded anywhere.
            "--local=/#/",
            "--user=root",
            "--pid-file=",
        ])
        .arg(format!("--port={}", self.port));
        for (name, value) in &self.records {
            // dnsmasq splits the value on commas into character-strings (each at most 255
            // bytes; resolvers join them) and takes quotes literally when given as an argument:
            // a long value goes as unquoted 255-byte pieces; a comma cannot be expressed.
            assert!(
                !value.contains(','),
                "TXT {name}: a comma cannot be served by dnsmasq ({value:?})"
            );
            let parts: Vec<String> = value
                .as_bytes()
                .chunks(255)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            cmd.arg(format!("--txt-record={name},{}", parts.join(",")));
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "start {}: {e} (infra/local/install.sh installs dnsmasq)",
                dnsmasq()
            )
        });
        self.child = Some(child);
        self.wait_ready().await;
    }

    /// Waits (at most 5 s) until a query gets an answer.
    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        // A TXT query for `ready.invalid`.
        let query: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ready\x07invalid\x00\x00\x10\x00\x01";
        loop {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("udp socket");
            if sock.send_to(query, ("127.0.0.1", self.port)).await.is_ok() {
                let mut buf = [0u8; 512];
                if let Ok(Ok(_)) =
                    tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq did not answer on port {} in 5 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server (by its PID).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
            let _ = c.wait().await;
        }
    }
}
