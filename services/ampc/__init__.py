"""ampc: the Allied Munitions Production Coordinator."""

__version__ = "0.1.0"
