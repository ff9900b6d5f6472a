//! The VMM's hooks: what the VMM does for the library (stop and resume the guest, receive
//! events), and how a session holds them while a hook runs.
use std::sync::Arc;

/// What the VMM does for the library: stop and resume the guest, receive events.
pub trait VmmHooks: Send + Sync {
    /// Stops the guest; 0 when it is stopped, else a negative errno.
    fn vm_stop(&self) -> i32;
    /// Resumes the guest; 0 on success, else a negative errno.
    fn vm_resume(&self) -> i32;
    /// True when `vm_stop` / `vm_resume` are provided.
    fn can_stop_vm(&self) -> bool;
    /// Receives one QMP-style event (JSON text).
    fn event(&self, event_json: &str);
}

/// The VMM's hooks as installed in a session, in an allocation of the library's own: every
/// caller holds a clone of it while it calls a hook, so `Session::set_vmm` can wait until
/// no thread holds the old one (however many clones of the hooks the VMM keeps itself).
pub struct InstalledHooks(pub(crate) Arc<dyn VmmHooks>);

impl std::ops::Deref for InstalledHooks {
    type Target = dyn VmmHooks;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}
