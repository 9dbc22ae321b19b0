"""dockui engine: a daemonless container engine.

Importable without the TUI. Keep this module (and every module on the CLI start-up path) free of
heavy imports (requests, pyroute2, textual): import them inside the functions that need them.
"""

__version__ = "0.1.0"
