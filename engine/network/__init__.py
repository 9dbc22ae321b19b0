"""Networks: their records and the values passed between the modules (`records`), the kernel side
(`plumbing`: bridges, veths, namespaces), named networks and the default bridge (`networks`), a
container's endpoints (`endpoint`: prepare, attach, detach, release), clean-up after a crash
(`reconcile`), addresses (`ipam`), published ports (`portmap`), links and `/etc/hosts` (`links`,
`hostsfiles`), the live bridge/veth view (`topology`), the embedded DNS of user-defined networks
(`dns`); `endpoints` is the former single module's namespace, kept for callers that have not moved.

May import `engine.kernel`, `engine.util`, `engine.events`, `engine.config`, `engine.errors`; pyroute2
only inside the functions that touch the kernel.
"""
