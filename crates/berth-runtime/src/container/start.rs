//! `start`: release the barrier and learn whether `execve` worked.

use super::{wait, Created};
use crate::error::RuntimeError;
use crate::process::channel::Message;

impl Created {
    /// Lets the process `execve` its command and waits until it has.
    ///
    /// `Ok(())` means the command is running: the close-on-exec sync channel closed. On
    /// `Err`, the process has already been reaped by this call (do not wait for it again):
    /// [`RuntimeError::NotFound`] (exit status 127 in Docker's terms) when the command does
    /// not exist, [`RuntimeError::CannotExecute`] (126) when it cannot run,
    /// [`RuntimeError::Setup`] when a step before `execve` failed (the message names it).
    /// [`RuntimeError::exit_code`] gives the status to report.
    pub fn start(&self) -> Result<(), RuntimeError> {
        if let Err(err) = self.channel.send(&Message::Start, None) {
            let status = wait(self.pid)?;
            tracing::debug!(?err, %status, "the process was gone before start");
            return Err(RuntimeError::ChildExited { status });
        }
        match self.channel.recv()? {
            None => Ok(()),
            Some((Message::Failed(failure), _)) => {
                wait(self.pid)?;
                Err(failure.into())
            }
            Some((other, _)) => Err(crate::process::channel::ChannelError::Unexpected {
                expected: "end of file or Failed",
                got: other.name(),
            }
            .into()),
        }
    }
}
