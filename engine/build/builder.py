"""The classic builder: a Dockerfile's stages, step by step, each step an image, as Docker's legacy
builder makes them.

Per step: `Step N/M : <instruction>`, then either ` ---> Using cache` (engine.build.cache) or the
work (engine.build.steps, one function per instruction): metadata instructions (ENV, LABEL, CMD, ...) make an image config with no layer (history
`empty_layer`); COPY/ADD/WORKDIR make a layer from a tar (engine.build.copying); RUN runs in an
intermediate container (engine.build.runner) whose writable layer is committed. Then
` ---> <12-hex image ID>`. At the end of each stage its image ID goes out as `aux`; after the last,
`Successfully built <id>` and one `Successfully tagged <name>` per tag.

Intermediate containers: removed after a successful step with `remove` (Docker's --rm, the
default), after any step with `force_remove`; a failed RUN's container is kept otherwise (Docker
keeps it for inspection); a cancelled build's running container is always removed. The images of
completed steps stay (they are the cache), as in Docker.

Invariant: the output goes only through `BuildOutput`; nothing here prints or reads a terminal,
so the CLI and the service share every line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.build import instructions as ins
from engine.build.cache import Prober
from engine.build.context import BuildContext
from engine.build.shellwords import env_map, expand
from engine.build.steps import DEFAULT_SHELL, STEPS
from engine.config import EngineConfig
from engine.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from engine.build.layered import LayeredView
    from engine.container.spawner import Spawner
    from engine.image.store import ImageStore

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILTIN_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                          "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})
NETWORKS = ("none", "bridge", "host")
CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels", "StopSignal",
               "Healthcheck", "OnBuild", "Shell", "ArgsEscaped")


@dataclass(frozen=True)
class BuildOutput:
    """Where the build's lines go: `stream` (text as Docker's `{"stream": ...}`), `aux` (stage image IDs)."""

    stream: Callable[[str], None]
    aux: Callable[[str], None]


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    dockerfile: str  # the Dockerfile's text
    tags: tuple[str, ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    target: str | None = None
    no_cache: bool = False
    network: str = "bridge"
    remove: bool = True
    force_remove: bool = False
    pull: bool = False
    platform: str | None = None


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    tags: tuple[str, ...]


def check_request(request: BuildRequest) -> BuildRequest:
    """Refuse what this builder does not do, before anything is made."""
    from engine.image.reference import parse_reference

    network = request.network or "bridge"
    if network == "default":  # Docker's legacy builder: RUN on the default bridge
        network = "bridge"
    if network not in NETWORKS:
        raise InvalidArgument(f"network mode {network!r} is not supported by the builder: use none, bridge or host")
    _check_platform(request.platform)
    for tag in request.tags:
        ref = parse_reference(tag)
        if ref.digest:
            raise InvalidArgument(f"invalid tag {tag!r}: a build tag cannot have a digest")
    return BuildRequest(**{**request.__dict__, "network": network})


def _check_platform(platform: str | None) -> None:
    """A build's RUN steps run on this host, so it builds for the host's platform only (named in
    any of containerd's spellings: `linux`, `amd64`, `linux/x86_64`, ...)."""
    if not platform:
        return
    from engine.image.manifest import host_platform, parse_platform

    wanted, host = parse_platform(platform).normalised(), host_platform().normalised()
    if (wanted.os, wanted.architecture) != (host.os, host.architecture):
        raise InvalidArgument(f"platform {platform!r} is not supported: "
                              f"dockui builds {host.os}/{host.architecture} images only")


@dataclass
class StageState:
    """What a stage has built so far: its image and the run config the next step starts from."""

    image_id: str = ""  # "" until FROM (and for `scratch` until the first step)
    image: dict[str, Any] = field(default_factory=dict)  # the whole image config
    config: dict[str, Any] = field(default_factory=dict)  # the run config (the image's "config")
    args: dict[str, str | None] = field(default_factory=dict)  # ARGs declared in this stage
    cmd_set: bool = False
    maintainer: str = ""


class Builder:
    """One build: the request, the store, the cache prober, the stages finished so far (for FROM
    and COPY --from), the build arguments used, and the step counter of the `Step N/M` lines."""

    def __init__(self, config: EngineConfig, request: BuildRequest, output: BuildOutput,
                 spawner: Spawner | None = None, cancelled: Callable[[], bool] = lambda: False) -> None:
        from engine.image.store import ImageStore

        self.config = config
        self.request = check_request(request)
        self.out = output
        self.spawner = spawner
        self.cancelled = cancelled
        self.store: ImageStore = ImageStore(config)
        self.prober = Prober(self.store, disabled=request.no_cache)
        self.context = BuildContext.open(request.context)
        self.build_args = dict(request.build_args)
        self.meta: dict[str, str] = {}
        self.used_args: set[str] = set()
        self.stages: list[tuple[ins.Stage, str]] = []  # finished stages and their image IDs
        self.escape = "\\"
        self.step = 0
        self.total = 0

    def say(self, text: str) -> None:
        self.out.stream(text)

    # --- the build --------------------------------------------------------------------------------

    def run(self) -> BuildResult:
        plan = ins.parse_plan(self.request.dockerfile)
        self.escape = plan.escape
        stages = list(plan.stages)
        if self.request.target:
            names = [s.name for s in stages]
            if self.request.target.lower() not in names:
                raise InvalidArgument(f"failed to reach build target {self.request.target} in Dockerfile")
            stages = stages[: names.index(self.request.target.lower()) + 1]
        if self.request.labels:
            last = stages[-1]
            extra = tuple(ins.KeyValues("LABEL", f"LABEL {k}={v}", 0, pairs=((k, v),))
                          for k, v in sorted(self.request.labels))
            stages[-1] = ins.Stage(last.index, last.source, last.commands + extra)
        for warning in plan.warnings:
            self.say(warning + "\n")
        self.total = len(plan.meta_args) + len(stages) + sum(len(s.commands) for s in stages)
        for arg in plan.meta_args:
            self.print_step(arg)
            for name, default in arg.pairs:
                value = expand(default, self.meta, self.escape) if default is not None else None
                if name in self.build_args:
                    value = self.build_args[name]
                    self.used_args.add(name)
                if value is not None:
                    self.meta[name] = value
        state = StageState()
        for stage in stages:
            state = self.build_stage(stage)
            self.stages.append((stage, state.image_id))
        unused = sorted(set(self.build_args) - self.used_args - BUILTIN_ARGS)
        if unused:
            self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        if not state.image_id:
            raise InvalidArgument("No image was generated. Is your Dockerfile empty?")
        return self.finish(state.image_id)

    def finish(self, image_id: str) -> BuildResult:
        from engine.image.reference import parse_reference

        self.say(f"Successfully built {image_id.split(':', 1)[1][:12]}\n")
        shown = []
        for tag in self.request.tags:
            ref = parse_reference(tag)
            self.store.tag(image_id, tag)
            name = f"{ref.familiar_name}:{ref.tag_or_latest}"
            shown.append(name)
            self.say(f"Successfully tagged {name}\n")
        return BuildResult(image_id, tuple(shown))

    def print_step(self, instruction: ins.Instruction) -> None:
        self.step += 1
        self.say(f"Step {self.step}/{self.total} : {instruction.original}\n")

    def build_stage(self, stage: ins.Stage) -> StageState:
        self.print_step(stage.source)
        self.prober.reset()
        state = self.begin_stage(stage)
        self.say(f" ---> {_short(state.image_id)}\n")
        triggers = list(state.config.get("OnBuild") or [])
        if triggers:
            state.config["OnBuild"] = None
            self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for text in triggers:
                trigger = ins.parse_instruction(_single_node(text))
                self.dispatch(state, trigger)
        for command in stage.commands:
            if self.cancelled():
                self.say("Build cancelled\n")
                from engine.build.runner import BuildCancelled

                raise BuildCancelled("Build cancelled")
            self.print_step(command)
            self.dispatch(state, command)
            self.say(f" ---> {_short(state.image_id)}\n")
        if state.image_id:
            self.out.aux(state.image_id)
        return state

    def begin_stage(self, stage: ins.Stage) -> StageState:
        source = stage.source
        _check_platform(expand(source.platform, self.meta, self.escape) if source.platform else None)
        name = expand(source.image, self.meta, self.escape)
        if not name:
            raise InvalidArgument(f"base name ({source.image}) should not be blank")
        state = StageState()
        if name.lower() != "scratch":
            image_id = self.stage_image(name) or self.base_image(name)
            record = self.store.resolve(image_id)
            state.image_id = record.id
            state.image = json.loads(json.dumps(record.config))
            state.config = dict(state.image.get("config") or {})
        else:
            state.image = {"architecture": _arch(), "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        env = list(state.config.get("Env") or [])
        if "PATH" not in env_map(env):
            env.append(DEFAULT_PATH_ENV)
        state.config["Env"] = env
        return state

    def stage_image(self, name: str) -> str | None:
        for stage, image_id in self.stages:
            if stage.name == name.lower() or str(stage.index) == name:
                return image_id
        return None

    def base_image(self, name: str) -> str:
        if not self.request.pull:
            try:
                return self.store.resolve(name).id
            except NotFound:
                pass
        from engine.image.pull import pull_image

        def progress(event: Any) -> None:
            if event.layer is None:
                self.say(event.status + "\n")

        return pull_image(self.config, name, progress=progress).id

    # --- dispatch ---------------------------------------------------------------------------------

    def env(self, state: StageState) -> dict[str, str]:
        """What `$VAR` sees: the stage's ARGs with a value, then its ENV (ENV wins)."""
        values = {k: v for k, v in state.args.items() if v is not None}
        values.update(env_map(state.config.get("Env")))
        return values

    def expand_word(self, state: StageState, word: str) -> str:
        """`word` with the stage's variables substituted (quotes and escapes removed)."""
        return expand(word, self.env(state), self.escape)

    def dispatch(self, state: StageState, command: ins.Instruction) -> None:
        STEPS[command.keyword](self, state, command)

    # --- images -----------------------------------------------------------------------------------

    def shell(self, state: StageState) -> list[str]:
        return list(state.config.get("Shell") or DEFAULT_SHELL)

    def view(self, state: StageState) -> LayeredView:
        return self.view_of(state.image_id)

    def view_of(self, image_id: str) -> LayeredView:
        from engine.build.layered import LayeredView

        return LayeredView(self.store.layer_dirs(image_id) if image_id else [])

    def container_config(self, state: StageState, cmd: list[str], entrypoint_cleared: bool = False) -> dict[str, Any]:
        config = {k: state.config.get(k) for k in CONFIG_KEYS if k in state.config}
        config["Cmd"] = list(cmd)
        if entrypoint_cleared:
            config["Entrypoint"] = None
        return json.loads(json.dumps(config))

    def use_cache(self, state: StageState, probe: dict[str, Any]) -> bool:
        found = self.prober.probe(state.image_id, probe)
        if found is None:
            return False
        self.say(" ---> Using cache\n")
        record = self.store.resolve(found)
        state.image_id = record.id
        state.image = json.loads(json.dumps(record.config))
        state.config = dict(state.image.get("config") or {})
        return True

    def commit_metadata(self, state: StageState, comment: str) -> None:
        """A step that changes only the config: an image with the same layers (history `empty_layer`)."""
        probe = self.container_config(state, [*self.shell(state), "#(nop) ", comment])
        if not self.use_cache(state, probe):
            self.commit(state, probe, None)

    def commit(self, state: StageState, probe: dict[str, Any], layer: Any, container_id: str | None = None) -> None:
        """The step's image: the parent's layers plus this step's (a LayerBuilder's tar, the
        container's writable layer, or none), the run config, and a history entry."""
        diff_id = None
        if layer is not None:
            diff_id = self.add_layer(state, lambda out: layer.write(out))
        elif container_id is not None:
            from engine.build import runner

            diff = runner.diff_dir(self.config, container_id)
            parent = self.view(state)
            runner.drop_mount_point_stubs(diff, lambda path: parent.entry(path) is not None)
            if not runner.diff_is_empty(diff):
                from engine.container.commit import write_layer_tar

                diff_id = self.add_layer(state, lambda out: write_layer_tar(diff, out))
        image = self.child_image(state, probe, diff_id, container_id)
        data = json.dumps(image, separators=(",", ":")).encode()
        record = self.store.add_image(data, [], parent=state.image_id)  # linked under the store's lock
        state.image_id = record.id
        state.image = image

    def add_layer(self, state: StageState, write: Callable[[Any], None]) -> str:
        import tempfile

        self.config.tmp_dir.mkdir(parents=True, exist_ok=True)
        parent_chain = None
        if state.image_id:
            chains = self.store.resolve(state.image_id).chain_ids
            parent_chain = chains[-1] if chains else None
        with tempfile.TemporaryFile(dir=self.config.tmp_dir, prefix="build-") as spool:
            write(spool)
            spool.seek(0)
            chain = self.store.add_layer(spool, "application/vnd.oci.image.layer.v1.tar", parent_chain, None)
        return self.store.layer_info(chain).diff_id

    def child_image(self, state: StageState, probe: dict[str, Any], diff_id: str | None,
                    container_id: str | None) -> dict[str, Any]:
        from engine.image.store.images import now_rfc3339

        created = now_rfc3339()
        parent = state.image
        image: dict[str, Any] = {
            "architecture": parent.get("architecture") or _arch(),
            "os": parent.get("os") or "linux",
            "config": json.loads(json.dumps({k: v for k, v in state.config.items() if v is not None})),
            "container_config": probe,
            "created": created,
            "docker_version": "dockui",
        }
        if parent.get("variant"):
            image["variant"] = parent["variant"]
        if container_id:
            image["container"] = container_id
        if state.maintainer:
            image["author"] = state.maintainer
        entry: dict[str, Any] = {"created": created, "created_by": " ".join(probe.get("Cmd") or [])}
        if diff_id is None:
            entry["empty_layer"] = True
        image["history"] = [*(parent.get("history") or []), entry]
        diff_ids = list((parent.get("rootfs") or {}).get("diff_ids") or [])
        image["rootfs"] = {"type": "layers", "diff_ids": [*diff_ids, *([diff_id] if diff_id else [])]}
        return image


# --- helpers ----------------------------------------------------------------------------------------


def build(config: EngineConfig, request: BuildRequest, output: BuildOutput, spawner: Spawner | None = None,
          cancelled: Callable[[], bool] = lambda: False) -> BuildResult:
    """Build `request`; the result's image ID and tags. Errors: InvalidArgument (the Dockerfile or
    the request), StepFailed (a step; `code` for a RUN), BuildCancelled."""
    return Builder(config, request, output, spawner, cancelled).run()


def _single_node(text: str) -> Any:
    from engine.build.dockerfile import parse

    nodes = parse(text).nodes
    if len(nodes) != 1:
        raise InvalidArgument("onbuild trigger should be a single expression")
    return nodes[0]












def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def _arch() -> str:
    from engine.image.store.images import host_architecture

    return host_architecture()



