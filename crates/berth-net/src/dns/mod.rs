//! The embedded DNS server of a user network: containers resolve each other's names (and
//! aliases) through it, and everything else through the host's resolvers.
//!
//! One server runs per user network, listening on the network's gateway address, port 53, over
//! UDP and TCP (RFC 7766 framing); the engine points the containers' resolv.conf at it and
//! implements [`Records`] from its store. Docker's embedded DNS and podman's aardvark-dns play
//! the same part; the behaviour below follows them.
//!
//! **Single thread, one `poll`.** The server is a long-lived process per network, so its cost is
//! its memory: one thread and one poll set (listening sockets, TCP clients, in-flight upstream
//! queries) and no async runtime, whose worker threads and buffers would cost more than the work
//! needs. Measured with `examples/dns_bench.rs`: 2.3–2.7 MiB RSS, of which about 250 KiB is
//! anonymous memory (a plain `sleep` is 1.8 MiB: libc and the loader are the rest), and 100–190
//! thousand local answers per second on one core; threads would buy nothing here.
//!
//! **Local answers.** A queries are matched against [`Records::lookup_a`] case-insensitively
//! and with or without the trailing dot; the answer is authoritative with a TTL of 600 s, the
//! value Docker uses. Container resolvers (glibc, musl) do not cache, so the TTL only reaches
//! caching resolvers inside containers; they re-learn a changed name within 10 minutes, as
//! under Docker (aardvark's 60 s converges faster, but Docker is the reference). A known name
//! has no AAAA or other records (containers are IPv4-only): NOERROR with no answers, never
//! forwarded, so container names do not leak to the host's resolvers. PTR questions for
//! `d.c.b.a.in-addr.arpa` go to [`Records::lookup_ptr`]. Search-domain suffixes get no special
//! treatment: a name the records do not know is simply forwarded.
//!
//! **Forwarding.** Anything else is relayed unchanged (but for a fresh random id, restored in the
//! reply) to the upstreams in order (the querying container's own, from
//! [`Records::upstreams_for`] by its source address, as Docker's embedded server uses a
//! container's `--dns`; the server's otherwise), each with a short timeout ([`DEFAULT_UPSTREAM_TIMEOUT`]);
//! an upstream that times out, refuses or fails sends the query on to the next, and when none is
//! left the client gets the last failure or SERVFAIL. A truncated UDP reply for a TCP client is
//! fetched again over TCP. Each in-flight query is a socket in the same poll set, so a slow
//! upstream never holds up answers to other clients.
//!
//! **Untrusted input.** Packets come from containers: anything hickory-proto cannot parse gets
//! FORMERR if a query header is readable and is dropped otherwise; responses sent to us are
//! dropped (no reflection loops); per-client buffers, TCP clients and in-flight forwards are
//! capped.

mod answer;
mod forward;
mod resolv_conf;
mod server;
mod tcp;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub use resolv_conf::upstreams_from_resolv_conf;
pub use server::{DnsServer, DEFAULT_UPSTREAM_TIMEOUT};

/// The names a network knows, as the engine records them.
pub trait Records {
    /// The addresses of the containers answering to `name` (a container name or alias). `name`
    /// comes lower-cased and without a trailing dot; no addresses means "not ours".
    fn lookup_a(&self, name: &str) -> Vec<Ipv4Addr>;
    /// The name of the container holding `ip` on this network, if any.
    fn lookup_ptr(&self, ip: Ipv4Addr) -> Option<String>;
    /// The resolvers for the names the records do not know, when the client at `client` has
    /// its own (a container's `--dns`); `None` means the server's. Asked once per forwarded
    /// query, so an answer may come from a cache the implementation keeps fresh.
    fn upstreams_for(&self, client: IpAddr) -> Option<Vec<SocketAddr>> {
        let _ = client;
        None
    }
}
