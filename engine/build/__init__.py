"""The classic (non-BuildKit) image builder: `dockui build` and the Engine API's `POST /build`.

Modules, bottom to top: `shellwords` (Docker's variable substitution and word splitting),
`dockerfile` (the parser: directives, continuations, comments, JSON and shell forms),
`instructions` (typed instructions and stages, checked once), `context` (the build context and
`.dockerignore`, file checksums), `layered` (an image's files read through its layer
directories), `copying` (COPY/ADD/WORKDIR as a layer tar), `runner` (RUN's intermediate container),
`cache` (Docker's legacy cache: the parent image and the step's config), `steps` (each instruction
applied to the build state), and `builder` (the whole build: stages, output lines, commits, tags).

Layering: above `engine.container` (RUN runs in a container made with the engine's own
create/start/commit) and `engine.image` (the store), below `engine.api`. Nothing here prints: the
output goes through a `BuildOutput` the front end supplies. Nothing is imported at `dockui run`.
"""
