"""The kernel interfaces Python 3.11 lacks: raw syscalls through ctypes (`syscalls`) and rtnetlink (`rtnetlink`).

May import `engine.util` and `engine.errors`; knows nothing of images, containers or networks.
"""
