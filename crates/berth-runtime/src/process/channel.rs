//! The parent ⇄ child synchronisation channel: a `SOCK_SEQPACKET` socket pair carrying typed
//! [`Message`]s, one per packet, plus an optional file descriptor (the pty master) as
//! `SCM_RIGHTS`.
//!
//! Both ends are close-on-exec. That is how the parent learns that `execve` succeeded: the
//! child's end closes and the parent reads end-of-file instead of a [`Message::Failed`].

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// Largest packet we send; failure messages are cut to fit.
const MAX_PACKET: usize = 4096;

/// Errors of the synchronisation channel.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// `socketpair(2)` failed.
    #[error("failed to create the parent/child sync socket pair")]
    Create(#[source] io::Error),
    /// Sending a message failed.
    #[error("failed to send {message} over the sync channel")]
    Send {
        /// The message's name.
        message: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Receiving a message failed.
    #[error("failed to receive from the sync channel")]
    Receive(#[source] io::Error),
    /// The peer sent bytes that are not a message.
    #[error("malformed message on the sync channel ({0} bytes)")]
    Malformed(usize),
    /// The peer sent a message we did not expect at this point.
    #[error("unexpected message on the sync channel: expected {expected}, got {got}")]
    Unexpected {
        /// What we waited for.
        expected: &'static str,
        /// What came.
        got: &'static str,
    },
}

/// What went wrong in the child, as the parent will report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// A set-up step failed (mount, namespace, capabilities…).
    Setup,
    /// `execve` failed with `ENOENT`: the command does not exist (exit status 127).
    NotFound,
    /// `execve` failed with `EACCES`/`ENOEXEC`/…: the command cannot run (exit status 126).
    CannotExecute,
}

/// A failure reported by the child: the failed step's message and the `errno` behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChildFailure {
    pub(crate) kind: FailureKind,
    pub(crate) errno: i32,
    pub(crate) message: String,
}

/// A message on the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// Parent → child: the cgroup (and user-namespace id maps) are in place; carry on.
    Continue,
    /// Child → parent: set-up is done, the child waits at the start barrier.
    Ready,
    /// Parent → child: release the barrier and `execve`.
    Start,
    /// Child → parent: a step failed; the child exits right after.
    Failed(ChildFailure),
}

impl Message {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Message::Continue => "Continue",
            Message::Ready => "Ready",
            Message::Start => "Start",
            Message::Failed(_) => "Failed",
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Message::Continue => vec![1],
            Message::Ready => vec![2],
            Message::Start => vec![3],
            Message::Failed(failure) => {
                let kind = match failure.kind {
                    FailureKind::Setup => 0,
                    FailureKind::NotFound => 1,
                    FailureKind::CannotExecute => 2,
                };
                let mut out = Vec::with_capacity(6 + failure.message.len());
                out.push(4);
                out.push(kind);
                out.extend_from_slice(&failure.errno.to_le_bytes());
                let mut end = failure.message.len().min(MAX_PACKET - out.len());
                while !failure.message.is_char_boundary(end) {
                    end -= 1;
                }
                out.extend_from_slice(&failure.message.as_bytes()[..end]);
                out
            }
        }
    }

    fn decode(bytes: &[u8]) -> Result<Self, ChannelError> {
        let malformed = || ChannelError::Malformed(bytes.len());
        match bytes {
            [1] => Ok(Message::Continue),
            [2] => Ok(Message::Ready),
            [3] => Ok(Message::Start),
            [4, kind, e0, e1, e2, e3, message @ ..] => {
                let kind = match kind {
                    0 => FailureKind::Setup,
                    1 => FailureKind::NotFound,
                    2 => FailureKind::CannotExecute,
                    _ => return Err(malformed()),
                };
                Ok(Message::Failed(ChildFailure {
                    kind,
                    errno: i32::from_le_bytes([*e0, *e1, *e2, *e3]),
                    message: String::from_utf8_lossy(message).into_owned(),
                }))
            }
            _ => Err(malformed()),
        }
    }
}

/// One end of the channel.
#[derive(Debug)]
pub(crate) struct Channel {
    socket: OwnedFd,
}

impl Channel {
    /// Creates a connected pair: `(parent end, child end)`.
    pub(crate) fn pair() -> Result<(Channel, Channel), ChannelError> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| ChannelError::Create(e.into()))?;
        Ok((Channel { socket: a }, Channel { socket: b }))
    }

    /// Sends `message`, with `fd` attached if given.
    pub(crate) fn send(
        &self,
        message: &Message,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<(), ChannelError> {
        let bytes = message.encode();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds;
        if let Some(fd) = fd {
            fds = [fd];
            control.push(SendAncillaryMessage::ScmRights(&fds));
        }
        loop {
            match rustix::net::sendmsg(
                &self.socket,
                &[IoSlice::new(&bytes)],
                &mut control,
                SendFlags::NOSIGNAL,
            ) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(ChannelError::Send {
                        message: message.name(),
                        source: e.into(),
                    })
                }
            }
        }
    }

    /// Receives one message and the descriptor attached to it, or `None` at end-of-file
    /// (the peer closed its end: exited, or `execve`d).
    pub(crate) fn recv(&self) -> Result<Option<(Message, Option<OwnedFd>)>, ChannelError> {
        let mut buf = [0u8; MAX_PACKET];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = loop {
            match rustix::net::recvmsg(
                &self.socket,
                &mut [IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(received) => break received,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(ChannelError::Receive(e.into())),
            }
        };
        let mut fd = None;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                for received_fd in fds {
                    fd.get_or_insert(received_fd);
                }
            }
        }
        if received.bytes == 0 {
            return Ok(None);
        }
        Ok(Some((Message::decode(&buf[..received.bytes])?, fd)))
    }

    /// Receives one message and checks it is `expected`.
    pub(crate) fn expect(&self, expected: &Message) -> Result<Reply, ChannelError> {
        match self.recv()? {
            None => Ok(Reply::Closed),
            Some((Message::Failed(failure), _)) => Ok(Reply::Failed(failure)),
            Some((message, fd)) if &message == expected => Ok(Reply::Expected(fd)),
            Some((message, _)) => Err(ChannelError::Unexpected {
                expected: expected.name(),
                got: message.name(),
            }),
        }
    }
}

/// What [`Channel::expect`] got.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The expected message, with the descriptor attached to it if any.
    Expected(Option<OwnedFd>),
    /// The peer reported a failure.
    Failed(ChildFailure),
    /// The peer closed its end (exited or `execve`d).
    Closed,
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let failure = Message::Failed(ChildFailure {
            kind: FailureKind::NotFound,
            errno: 2,
            message: "exec \"nope\": not found in $PATH".into(),
        });
        for message in [Message::Continue, Message::Ready, Message::Start, failure] {
            assert_eq!(Message::decode(&message.encode()).unwrap(), message);
        }
        assert!(Message::decode(&[9]).is_err());
        assert!(Message::decode(&[]).is_err());
    }

    #[test]
    fn long_failure_is_cut_on_a_char_boundary() {
        let message = Message::Failed(ChildFailure {
            kind: FailureKind::Setup,
            errno: 1,
            message: "é".repeat(MAX_PACKET),
        });
        let bytes = message.encode();
        assert!(bytes.len() <= MAX_PACKET);
        let Message::Failed(decoded) = Message::decode(&bytes).unwrap() else {
            panic!("not a failure")
        };
        assert!(decoded.message.chars().all(|c| c == 'é'));
    }

    #[test]
    fn pair_carries_messages_fds_and_eof() {
        let (parent, child) = Channel::pair().unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        child.send(&Message::Ready, Some(devnull.as_fd())).unwrap();
        let (message, fd) = parent.recv().unwrap().unwrap();
        assert_eq!(message, Message::Ready);
        assert!(fd.is_some());
        parent.send(&Message::Start, None).unwrap();
        assert!(matches!(
            child.expect(&Message::Start).unwrap(),
            Reply::Expected(None)
        ));
        drop(child);
        assert!(parent.recv().unwrap().is_none());
    }
}
