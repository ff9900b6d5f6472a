//! The built-in RAM model (issue: convergence engine).
