//! A synchronous rtnetlink socket: links, addresses and routes, one request at a time.
//!
//! Synchronous on purpose: berth configures networks from the single-threaded monitor, which
//! forks the runtime, so no async runtime may run there (DESIGN.md). A socket belongs to the
//! network namespace it was opened in, which is how [`crate::netns`] configures a container's
//! namespace without entering it for more than the moment it takes to open the socket.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::ipam::Subnet;

/// An rtnetlink socket bound to the network namespace it was opened in.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// Sends one request and collects the replies: the dump's messages, or nothing for an ack.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0)?;

        let mut replies = Vec::new();
        let mut recv = Vec::with_capacity(32 * 1024);
        loop {
            recv.clear();
            self.socket.recv(&mut recv, 0)?;
            let mut offset = 0;
            while offset < recv.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&recv[offset..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "empty netlink message",
                    ));
                }
                offset += (len + 3) & !3;
                if reply.header.sequence_number != self.sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(err) => {
                        return match err.code {
                            None => Ok(replies),
                            Some(_) => Err(err.to_io()),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(inner) => {
                        replies.push(inner);
                        if flags & NLM_F_DUMP != NLM_F_DUMP {
                            // A plain reply (e.g. a GET by name) is followed by no ack.
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn ack(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.request(message, NLM_F_ACK | flags).map(drop)
    }

    /// The index of link `name`, if it exists.
    pub fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(err) if err.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Creates bridge `name` (down); fails with `EEXIST` if it exists.
    pub fn create_bridge(&mut self, name: &str) -> io::Result<u32> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)?;
        self.link_index(name)?
            .ok_or_else(|| io::Error::other(format!("bridge {name} vanished after creation")))
    }

    /// Creates a veth pair: `host` here, `peer` (named `peer_name`) in the namespace `peer_ns`.
    pub fn create_veth(
        &mut self,
        host: &str,
        peer_name: &str,
        peer_ns: BorrowedFd<'_>,
    ) -> io::Result<()> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(peer_name.to_string()));
        peer.attributes
            .push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Deletes link `name`; a link that is already gone is fine.
    pub fn delete_link(&mut self, name: &str) -> io::Result<()> {
        let Some(index) = self.link_index(name)? else {
            return Ok(());
        };
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        match self.ack(RouteNetlinkMessage::DelLink(msg), 0) {
            Err(err) if err.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }

    /// Brings link `index` up, optionally setting its MAC address and bridge first.
    pub fn set_link(
        &mut self,
        index: u32,
        mac: Option<[u8; 6]>,
        controller: Option<u32>,
    ) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        if let Some(mac) = mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if let Some(controller) = controller {
            msg.attributes.push(LinkAttribute::Controller(controller));
        }
        self.ack(RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Brings link `index` up as a port of bridge `controller`, labelled with `owner` (its
    /// IFLA_IFALIAS, which `ip link` shows as `alias`): one request, so marking the port costs
    /// nothing extra.
    pub fn attach_to_bridge(&mut self, index: u32, controller: u32, owner: &str) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::Controller(controller));
        msg.attributes
            .push(LinkAttribute::IfAlias(owner.to_string()));
        self.ack(RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// The ports of bridge `controller`: each one's name and owner label (see
    /// [`Netlink::attach_to_bridge`]), if it has one.
    pub fn bridge_ports(&mut self, controller: u32) -> io::Result<Vec<(String, Option<String>)>> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| {
                let RouteNetlinkMessage::NewLink(link) = reply else {
                    return None;
                };
                let attributes = &link.attributes;
                attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::Controller(c) if *c == controller))
                    .then_some(())?;
                let name = attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(name) => Some(name.clone()),
                    _ => None,
                })?;
                let owner = attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfAlias(alias) => Some(alias.clone()),
                    _ => None,
                });
                Some((name, owner))
            })
            .collect())
    }

    /// Turns on hairpin mode on bridge port `index`: a container can reach itself through its
    /// own published port (the DNAT sends the packet back out of the port it came in on).
    pub fn set_hairpin(&mut self, index: u32) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                true,
            )])),
        ]));
        self.ack(RouteNetlinkMessage::NewLink(msg), 0)
    }

    /// Adds `address/prefix` to link `index`; an address already there is fine.
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Local(IpAddr::V4(address)));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(address)));
        let subnet = Subnet::new(address, prefix);
        if prefix < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(subnet.broadcast()));
        }
        match self.ack(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(err) if err.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Every IPv4 address of every link: (link index, address, prefix length).
    pub fn addresses(&mut self) -> io::Result<Vec<(u32, Ipv4Addr, u8)>> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        let replies = self.request(RouteNetlinkMessage::GetAddress(msg), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(a) => {
                    let ip = a.attributes.iter().find_map(|attr| match attr {
                        AddressAttribute::Local(IpAddr::V4(ip))
                        | AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                        _ => None,
                    })?;
                    Some((a.header.index, ip, a.header.prefix_len))
                }
                _ => None,
            })
            .collect())
    }

    /// The destinations of the IPv4 routes in the main table (the default route excluded).
    pub fn routes(&mut self) -> io::Result<Vec<Subnet>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        let replies = self.request(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(route)
                    if route.header.table == RouteHeader::RT_TABLE_MAIN
                        && route.header.destination_prefix_length > 0 =>
                {
                    route.attributes.iter().find_map(|attr| match attr {
                        RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                            Some(Subnet::new(*ip, route.header.destination_prefix_length))
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Adds the default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.ack(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }
}
