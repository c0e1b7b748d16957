//! berth-net: the mechanism of container networking, with no knowledge of containers.
//!
//! Where to start reading:
//! - [`netlink`]: a synchronous rtnetlink socket (bridges, veth pairs, addresses, routes);
//! - [`netns`]: network namespaces pinned by a bind mount, configured before the container;
//! - [`firewall`]: nftables rule sets for masquerade, published ports and `--internal`;
//! - [`ipam`]: subnets, Docker's default pools, the next free address;
//! - [`ports`]: `-p` / `--expose` specs; [`files`]: `/etc/hosts` and `/etc/resolv.conf`;
//! - [`dns`]: the embedded DNS server of user networks.
//!
//! The model (which networks exist, which container holds which address) is the engine's.

pub mod dns;
pub mod files;
pub mod firewall;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod ports;
