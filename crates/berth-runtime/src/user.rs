//! The container process's identity: supplementary groups, gid and uid (numeric, from
//! `process.user`; the engine resolves names against the image's `/etc/passwd`).
//!
//! The switch keeps the permitted capabilities (`PR_SET_KEEPCAPS`), so that
//! [`crate::capabilities::apply`] can still grant a non-root user the spec's capabilities.
//! rustix's `set_thread_*` calls are the raw per-thread system calls: exactly right in the
//! single-threaded child, where glibc's all-threads `setxid` machinery would be useless work.

use std::io;

use rustix::process::{Gid, Uid};

/// Errors while switching user.
#[derive(Debug, thiserror::Error)]
#[error("failed to {step}")]
pub struct UserError {
    step: String,
    #[source]
    source: io::Error,
}

/// Who the process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserPlan {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) additional_gids: Vec<u32>,
    /// `process.user.umask`, or 0022.
    pub(crate) umask: u32,
}

/// Sets groups, gid and uid, keeping permitted capabilities across the uid change.
pub(crate) fn switch(plan: &UserPlan) -> Result<(), UserError> {
    let failed = |step: String| {
        move |e: rustix::io::Errno| UserError {
            step,
            source: e.into(),
        }
    };
    rustix::thread::set_keep_capabilities(true)
        .map_err(failed("keep capabilities across the uid switch".into()))?;
    let groups: Vec<Gid> = plan
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    rustix::thread::set_thread_groups(&groups).map_err(failed(format!(
        "set the supplementary groups {:?}",
        plan.additional_gids
    )))?;
    let gid = Gid::from_raw(plan.gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid)
        .map_err(failed(format!("set the gid to {}", plan.gid)))?;
    let uid = Uid::from_raw(plan.uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid)
        .map_err(failed(format!("set the uid to {}", plan.uid)))?;
    rustix::thread::set_keep_capabilities(false)
        .map_err(failed("clear keep-capabilities".into()))?;
    Ok(())
}
