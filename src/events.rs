//! Events in QMP form (QEMU's compact layout, see `report::qmp`), queued while the library holds its locks and delivered to
//! `SwoVmmOps.event` once they are released, in the order they were raised.
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use crate::locks::lock;

/// Formats one event: `{"timestamp": {"seconds", "microseconds"}, "event", "data"}`, the
/// time taken from the caller's clock in ms.
pub fn format_event(now_ms: u64, name: &str, data: Value) -> String {
    let mut event = Map::new();
    event.insert(
        "timestamp".into(),
        json!({"seconds": now_ms / 1000, "microseconds": (now_ms % 1000) * 1000}),
    );
    event.insert("event".into(), Value::String(name.into()));
    event.insert("data".into(), data);
    crate::report::qmp::to_string(&Value::Object(event))
}

/// The queue of one session.
#[derive(Default)]
pub struct EventQueue {
    queued: Mutex<VecDeque<String>>,
    /// How many events are queued: lets every call see "nothing to deliver" without a lock.
    len: AtomicUsize,
    delivering: Mutex<()>,
}

impl EventQueue {
    pub fn push(&self, json: String) {
        let mut queued = lock(&self.queued);
        queued.push_back(json);
        self.len.store(queued.len(), Ordering::Release);
    }

    fn pop(&self) -> Option<String> {
        let mut queued = lock(&self.queued);
        let next = queued.pop_front();
        self.len.store(queued.len(), Ordering::Release);
        next
    }

    /// Delivers queued events through `deliver`. Only one thread delivers at a time; a thread
    /// that finds another delivering leaves its events to it, so order is kept and a callback
    /// that raises events of its own does not deadlock.
    pub fn drain(&self, mut deliver: impl FnMut(&str)) {
        loop {
            let Ok(_turn) = self.delivering.try_lock() else { return };
            while let Some(event) = self.pop() {
                deliver(&event);
            }
            drop(_turn);
            // An event pushed between our last pop and releasing the turn would otherwise
            // wait for the next call: look once more.
            if self.is_empty() {
                return;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_has_qmp_shape_with_caller_time() {
        let text = format_event(12_345, "MIGRATION", json!({"status": "active"}));
        assert_eq!(
            text,
            r#"{"timestamp": {"seconds": 12, "microseconds": 345000}, "event": "MIGRATION", "data": {"status": "active"}}"#
        );
    }

    #[test]
    fn drain_keeps_order() {
        let q = EventQueue::default();
        q.push("a".into());
        q.push("b".into());
        let mut seen = Vec::new();
        q.drain(|e| seen.push(e.to_owned()));
        assert_eq!(seen, ["a", "b"]);
        assert!(q.is_empty());
    }
}
