"""A GitLab simulator for tests and `mirrorbot console --demo`: GitLab's mirror API with
its status codes and bodies, per-token users and roles, a mirror worker and fault injection."""

from bot.simulator.faults import Fault
from bot.simulator.server import GitLabSimulator
from bot.simulator.world import Timing, World

__all__ = ["Fault", "GitLabSimulator", "Timing", "World"]
