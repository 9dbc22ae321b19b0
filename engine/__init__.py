"""dockui engine: a daemonless container engine.

Importable without the TUI. Keep this module (and every module on the CLI start-up path) free of
heavy imports (requests, pyroute2, textual): import them inside the functions that need them.
"""

__version__ = "0.1.0"

# True in the `dockui` command's own process (tui.launcher.main called without argv), which ends
# with its verb: its monitor may then be its direct child (engine.container.start). Library callers
# (tests, the bench, the TUI's in-process use) leave it False.
running_as_command = False
