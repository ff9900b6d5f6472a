//! Progress tracking, stall detection and downtime advice (issue: convergence engine).
