"""The engine's one public façade: typed calls for every verb, shared by the CLI, the TUI and the
Engine API service (`engine.service`).

One module per area (`containers`, `images`, `networks`, `volumes`, `system`). Each call takes the
`EngineConfig` first, validates its typed, frozen arguments and returns frozen results or the
engine's own records; errors are `engine.errors` classes (NotFound, Conflict, InvalidArgument, ...),
which every front end maps to its own form (an exit status, an HTTP status). A verb is implemented
once, below this package; nothing here parses flags or prints.

May import every engine area; only the front ends (`engine.cli`, `engine.service`, `tui`) import it.
"""
