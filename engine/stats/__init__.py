"""Live figures: the one sampler (`sampler`) shared by `dockui stats`, the TUI and the API service,
reading cgroups (v1 and v2), interfaces and the host.

May import `engine.sandbox.cgroups`, `engine.container.state` (which containers to sample), `engine.util`.
"""
