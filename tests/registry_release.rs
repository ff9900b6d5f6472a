//! When the registry lets go of an unregistered handler's source (the `PendingSource` box,
//! and with it whatever it owns: a model's state, a C handler's wrapper). docs/design.md
//! §Ownership: once unregister returned no callback of the handler runs; the registry must
//! then not keep the source alive either, also when a query was in flight during the
//! unregister (src/pending.rs module comment: a query's slot keeps the entry list it used,
//! and a list that changed meanwhile is dropped when that query ends).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchover::pending::QueryKind;
use switchover::{HandlerFlags, Pending, PendingSource, Session};

/// A source the test keeps a handle on: the `Arc`'s count says whether the registry still
/// holds the source.
struct Held(#[allow(dead_code)] Arc<()>);
impl PendingSource for Held {
    fn save_query_pending(&self, p: &mut Pending, _exact: bool, _final: bool) {
        p.precopy += 1;
    }
}

/// Blocks the query in its callback until `release` is set (at most 60 s, so a bug fails the
/// test instead of hanging it).
struct Gate {
    entered: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}
impl PendingSource for Gate {
    fn save_query_pending(&self, p: &mut Pending, _exact: bool, _final: bool) {
        self.entered.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.release.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        p.stopcopy += 10;
    }
}

#[test]
fn an_idle_registry_releases_an_unregistered_source_at_once() {
    let s = Session::new();
    let token = Arc::new(());
    let id = s.registry().register("dev", 0, HandlerFlags::empty(), Box::new(Held(token.clone()))).unwrap();
    // A query makes the slot keep the entry list.
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap().precopy, 1);
    assert_eq!(Arc::strong_count(&token), 2);
    s.registry().unregister(id).unwrap();
    assert_eq!(Arc::strong_count(&token), 1, "the registry still holds the unregistered source");
}

#[test]
fn a_source_unregistered_during_a_query_is_released_when_that_query_ends() {
    let s = Arc::new(Session::new());
    let token = Arc::new(());
    let (entered, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let id = s.registry().register("dev", 0, HandlerFlags::empty(), Box::new(Held(token.clone()))).unwrap();
    s.registry()
        .register("gate", 0, HandlerFlags::empty(), Box::new(Gate { entered: entered.clone(), release: release.clone() }))
        .unwrap();
    let query = {
        let s = s.clone();
        std::thread::spawn(move || s.query_pending(QueryKind::Fast).unwrap())
    };
    while !entered.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    // The query is in `gate`'s callback, past `dev`: unregistering `dev` does not wait for it.
    s.registry().unregister(id).unwrap();
    release.store(true, Ordering::SeqCst);
    // `dev` was asked before the unregister: 1 precopy byte, and `gate`'s 10.
    assert_eq!(query.join().unwrap(), Pending { precopy: 1, stopcopy: 10, postcopy: 0 });
    // The query has ended: nothing in the registry may hold `dev` any more.
    assert_eq!(Arc::strong_count(&token), 1, "the ended query's slot still holds the unregistered source");
    // And a later query does not see it.
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap(), Pending { precopy: 0, stopcopy: 10, postcopy: 0 });
}
