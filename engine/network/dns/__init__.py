"""Docker's embedded DNS for user-defined networks: a resolver at 127.0.0.11 in every container
whose network is user-defined, answering the names of the containers on its networks and
forwarding the rest.

`client` (register a container, start the resolver; on the start path, C modules only), `resolver`
(the process: one per engine root, started on demand, gone with the last container), `names` (the
name table from the endpoint records), `message` (the DNS wire format), `upstreams` (where unknown
names go), `resolvconf` (the container's resolv.conf). docs/network.md, "Embedded DNS".

Nothing is imported here: the monitor loads `client` alone.
"""
