"""Networks: the bridge and veth endpoints, named networks and their records (`endpoints`), addresses
(`ipam`), published ports (`portmap`), links and `/etc/hosts` (`links`, `hostsfiles`), the live
bridge/veth view (`topology`).

May import `engine.kernel`, `engine.util`, `engine.config`, `engine.errors`; pyroute2 only inside the
functions that touch the kernel.
"""
