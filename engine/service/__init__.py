"""The Docker Engine API service (`dockui system service`): Docker's HTTP API over a Unix socket.

A thin translation between Docker's API types and `engine.api`: no verb is implemented here. The
service holds no container state of its own beyond exec instances and streams in flight, so it can
stop, crash or restart while containers (each under its own monitor) go on. aiohttp is imported only
on this path, never by the CLI's other verbs.
"""
