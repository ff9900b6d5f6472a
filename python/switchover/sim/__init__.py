"""The migration simulator: scenario files, a VM/link/device model, and a loop that runs the
switchover library's own decisions against it in simulated time.

Run ``python -m switchover.sim scenarios/vgpu.toml --plot vgpu.png``.
"""
from .scenario import Scenario, ScenarioError, load
from .run import Result, Simulation, engine_available

__all__ = ["Scenario", "ScenarioError", "load", "Result", "Simulation", "engine_available"]
