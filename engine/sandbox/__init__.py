"""One isolated process: namespaces and the first process (`process`), the root filesystem (`rootfs`),
capabilities/seccomp/devices (`security`) and cgroups v1 and v2 (`cgroups`).

May import `engine.kernel`, `engine.util`, `engine.image.imageconfig` (Docker's user and command rules),
`engine.config`, `engine.errors`. Knows nothing of container records or networks.
"""
