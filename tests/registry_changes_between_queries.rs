//! Each query asks the handlers registered when it starts, also after earlier queries: the
//! registry keeps the list a query used for the next one (src/pending.rs module comment),
//! which must not hide a handler registered since. As QEMU's `qemu_savevm_state_pending_*`
//! walks the current `savevm_state.handlers` list on every call.
use switchover::pending::QueryKind;
use switchover::{HandlerFlags, Pending, PendingSource, Session};

struct Fixed(Pending);
impl PendingSource for Fixed {
    fn save_query_pending(&self, p: &mut Pending, _exact: bool, _final: bool) {
        p.accumulate(&self.0);
    }
}

fn add(s: &Session, idstr: &str, precopy: u64, stopcopy: u64) -> u64 {
    s.registry()
        .register(idstr, 0, HandlerFlags::empty(), Box::new(Fixed(Pending { precopy, stopcopy, postcopy: 0 })))
        .unwrap()
}

#[test]
fn a_handler_registered_after_a_query_is_asked_by_the_next_query() {
    let s = Session::new();
    add(&s, "ram", 1000, 0);
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap().total(), 1000);
    add(&s, "vfio", 0, 300);
    // 1000 + 300: the second query sees the device registered in between.
    assert_eq!(s.query_pending(QueryKind::Exact).unwrap(), Pending { precopy: 1000, stopcopy: 300, postcopy: 0 });
}

#[test]
fn every_query_of_a_growing_registry_sees_every_handler_so_far() {
    let s = Session::new();
    // Handler n has n precopy bytes: after n registrations the sum is 1 + 2 + ... + n.
    for n in 1..=5u64 {
        add(&s, &format!("dev{n}"), n, 0);
        assert_eq!(s.query_pending(QueryKind::Fast).unwrap().precopy, n * (n + 1) / 2);
    }
}

#[test]
fn a_handler_unregistered_and_another_registered_between_queries() {
    let s = Session::new();
    let a = add(&s, "a", 10, 0);
    add(&s, "b", 20, 0);
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap().precopy, 30);
    s.registry().unregister(a).unwrap();
    add(&s, "c", 40, 0);
    // b and c: 20 + 40.
    assert_eq!(s.query_pending(QueryKind::Fast).unwrap().precopy, 60);
}

#[test]
fn the_registry_is_empty_only_while_no_handler_is_registered() {
    let s = Session::new();
    assert!(s.registry().is_empty());
    let a = add(&s, "a", 1, 0);
    assert!(!s.registry().is_empty());
    assert_eq!(s.registry().len(), 1);
    s.registry().unregister(a).unwrap();
    assert!(s.registry().is_empty());
}
