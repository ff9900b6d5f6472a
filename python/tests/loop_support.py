"""A VMM's migration loop for the tests: fixed pending figures and 100 ms passes."""


def fixed(pre=0, stop=0, post=0):
    """A `save_query_pending` callback that reports the same buckets on every query."""
    return lambda exact, final: (pre, stop, post)


class Loop:
    """Drives a session like a VMM's migration thread: 100 ms per pass, idle RAM."""

    def __init__(self, session, now=0):
        self.s = session
        self.now = now

    def start(self):
        self.s.migration_start(self.now)
        self.s.setup_done(self.now)

    def pass_(self, sent=0):
        self.now += 100
        if sent:
            self.s.record_transferred(sent)
        self.s.update_counters(self.now)
        return self.s.iteration_step(self.now)

    def until(self, t):
        """Passes until `t` ms; the last step (None when already there)."""
        step = None
        while self.now < t:
            step = self.pass_()
        return step
