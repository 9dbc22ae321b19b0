"""What each Dockerfile instruction does to the build state: one function per instruction, called by
the builder (engine.build.builder) with the stage's state, as Docker's legacy dispatchers do.

Metadata instructions change the run config and commit an image without a layer; WORKDIR, COPY and
ADD commit a layer made from a tar (engine.build.copying); RUN runs an intermediate container
(engine.build.runner) and commits its writable layer. Every step first probes the cache with the
container config Docker would record for it (its Cmd says what the step did). `STEPS` maps each
keyword to its function; `StepFailed` is a step's failure with the code Docker reports.

Invariant: every step ends with `state.image_id` naming the step's image (a cache hit or a new
commit), or raises; after a step raised, nothing of its stage is used again.
"""

from __future__ import annotations

import json
import os
import posixpath

from engine.build import instructions as ins
from engine.build.context import checksum
from engine.build.shellwords import env_map, expand, expand_words
from engine.errors import DockuiError, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from engine.build.builder import Builder, StageState

DEFAULT_SHELL = ("/bin/sh", "-c")


class StepFailed(DockuiError):
    """A step failed; `code` is the RUN's exit status (Docker's errorDetail code), 1 otherwise."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def env_step(b: Builder, state: StageState, c: ins.KeyValues) -> None:
    # Every pair is expanded with the environment from before the instruction, as in Docker
    # (`ENV A=1 B=$A` gives B the previous A).
    parts = [f"{b.expand_word(state, key)}={b.expand_word(state, value)}" for key, value in c.pairs]
    state.config["Env"] = _replace_env(list(state.config.get("Env") or []), parts)
    b.commit_metadata(state, "ENV " + " ".join(parts))


def label_step(b: Builder, state: StageState, c: ins.KeyValues) -> None:
    labels = dict(state.config.get("Labels") or {})
    parts = []
    for key, value in c.pairs:
        name, val = b.expand_word(state, key), b.expand_word(state, value)
        labels[name] = val
        parts.append(f"{name}={val}")
    state.config["Labels"] = labels
    b.commit_metadata(state, "LABEL " + " ".join(parts))


def maintainer_step(b: Builder, state: StageState, c: ins.Text) -> None:
    state.maintainer = c.text
    b.commit_metadata(state, "MAINTAINER " + c.text)


def arg_step(b: Builder, state: StageState, c: ins.Arg) -> None:
    parts = []
    for name, default in c.pairs:
        value = b.expand_word(state, default) if default is not None else None
        parts.append(f"{name}={value}" if value is not None else name)
        if name in b.build_args:
            value = b.build_args[name]
            b.used_args.add(name)
        elif value is None and name in b.meta:
            value = b.meta[name]
        state.args[name] = value
    b.commit_metadata(state, "ARG " + " ".join(parts))


def cmd_step(b: Builder, state: StageState, c: ins.CommandLine) -> None:
    state.config["Cmd"] = command_of(state, c)
    b.commit_metadata(state, "CMD " + _go_quote(state.config["Cmd"]))
    state.cmd_set = True


def entrypoint_step(b: Builder, state: StageState, c: ins.CommandLine) -> None:
    state.config["Entrypoint"] = command_of(state, c)
    if not state.cmd_set:
        state.config["Cmd"] = None
    b.commit_metadata(state, "ENTRYPOINT " + _go_quote(state.config["Entrypoint"]))


def command_of(state: StageState, c: ins.CommandLine) -> list[str]:
    """The exec form as written, or the shell form under the stage's SHELL (default `/bin/sh -c`)."""
    if c.exec_form is not None:
        return list(c.exec_form)
    return [*(state.config.get("Shell") or DEFAULT_SHELL), c.shell_form]


def shell_step(b: Builder, state: StageState, c: ins.Words) -> None:
    state.config["Shell"] = list(c.words)
    b.commit_metadata(state, "SHELL " + _go_list(c.words))


def user_step(b: Builder, state: StageState, c: ins.Text) -> None:
    state.config["User"] = b.expand_word(state, c.text)
    b.commit_metadata(state, "USER " + state.config["User"])


def stopsignal_step(b: Builder, state: StageState, c: ins.Text) -> None:
    from engine.image.imageconfig import parse_signal

    signal_name = b.expand_word(state, c.text)
    parse_signal(signal_name)
    state.config["StopSignal"] = signal_name
    b.commit_metadata(state, "STOPSIGNAL " + signal_name)


def expose_step(b: Builder, state: StageState, c: ins.Words) -> None:
    words = [w for word in c.words for w in expand_words(word, b.env(state), b.escape)]
    ports = dict(state.config.get("ExposedPorts") or {})
    for word in words:
        ports.update({p: {} for p in _port_keys(word)})
    state.config["ExposedPorts"] = ports
    b.commit_metadata(state, "EXPOSE " + " ".join(words))


def volume_step(b: Builder, state: StageState, c: ins.Words) -> None:
    volumes = dict(state.config.get("Volumes") or {})
    names = [b.expand_word(state, w) for w in c.words] if c.is_json else \
        [w for word in c.words for w in expand_words(word, b.env(state), b.escape)]
    for name in names:
        if not name.strip():
            raise InvalidArgument("VOLUME specified can not be an empty string")
        volumes[name.strip()] = {}
    state.config["Volumes"] = volumes
    b.commit_metadata(state, "VOLUME " + _go_list(names))


def healthcheck_step(b: Builder, state: StageState, c: ins.Healthcheck) -> None:
    from engine.container.health import parse_duration

    check: dict[str, Any] = {"Test": list(c.test)}
    keys = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
            "start-interval": "StartInterval"}
    for name, value in c.options:
        if name == "retries":
            if not value.isdigit():
                raise InvalidArgument(f"--retries must be a non-negative integer: {value!r}")
            check["Retries"] = int(value)
        else:
            ns = parse_duration(value, name)
            if 0 < ns < 1_000_000:
                raise InvalidArgument(f"Interval {name} cannot be less than 1ms")
            check[keys[name]] = ns
    old = (state.config.get("Healthcheck") or {}).get("Test") or []
    if old and old[0] != "NONE":
        b.say(f"Note: overriding previous HEALTHCHECK: {_go_list(old)}\n")
    state.config["Healthcheck"] = check
    b.commit_metadata(state, "HEALTHCHECK " + json.dumps(check, sort_keys=True))


def onbuild_step(b: Builder, state: StageState, c: ins.Onbuild) -> None:
    state.config["OnBuild"] = [*(state.config.get("OnBuild") or []), c.expression]
    b.commit_metadata(state, "ONBUILD " + c.expression)


def workdir_step(b: Builder, state: StageState, c: ins.Text) -> None:
    path = b.expand_word(state, c.text)
    current = state.config.get("WorkingDir") or "/"
    workdir = posixpath.normpath(path if path.startswith("/") else posixpath.join(current, path))
    state.config["WorkingDir"] = workdir
    comment = "WORKDIR " + workdir
    probe = b.container_config(state, [*b.shell(state), "#(nop) " + comment])
    if b.use_cache(state, probe):
        return
    view = b.view(state)
    if view.lookup(workdir) is not None:
        b.commit(state, probe, None)
        return
    from engine.build.copying import LayerBuilder, Owner

    layer = LayerBuilder(view, Owner(0, 0), b.config.tmp_dir)
    layer.ensure_dir(workdir)
    b.commit(state, probe, layer)


def copy_step(b: Builder, state: StageState, c: ins.Copy) -> None:
    copy(b, state, c, is_add=False)


def add_step(b: Builder, state: StageState, c: ins.Copy) -> None:
    copy(b, state, c, is_add=True)


def run_step(b: Builder, state: StageState, c: ins.CommandLine) -> None:
    from engine.build import runner

    argv = command_of(state, c)
    declared = {k: v for k, v in state.args.items() if v is not None}
    env_names = set(env_map(state.config.get("Env")))
    build_env = sorted(f"{k}={v}" for k, v in declared.items() if k not in env_names)
    save_cmd = [f"|{len(build_env)}", *build_env, *argv] if build_env else argv
    probe = b.container_config(state, save_cmd, entrypoint_cleared=True)
    if b.use_cache(state, probe):
        return
    if not state.image_id:
        raise StepFailed("Please provide a source image with `from` prior to run")
    cid = runner.create_container(b.config, runner.RunSpec(state.image_id, tuple(argv), tuple(build_env),
                                                             b.request.network))
    b.say(f" ---> Running in {cid[:12]}\n")
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two frames
    try:
        code = runner.run_container(b.config, cid, lambda data: b.say(decoder.decode(data)), b.spawner, b.cancelled)
    except BaseException:
        discard(b, cid)
        raise
    if code != 0:
        if b.request.force_remove:
            remove_intermediate(b, cid)
        raise StepFailed(f"The command '{' '.join(argv)}' returned a non-zero code: {code}", code)
    try:
        b.commit(state, probe, None, container_id=cid)
    except BaseException:
        if b.request.remove or b.request.force_remove:
            discard(b, cid)
        raise
    if b.request.remove or b.request.force_remove:
        remove_intermediate(b, cid)


def discard(b: Builder, cid: str) -> None:
    from engine.build import runner

    try:
        runner.remove_container(b.config, cid)
    except (DockuiError, OSError):
        pass


def remove_intermediate(b: Builder, cid: str) -> None:
    from engine.build import runner

    runner.remove_container(b.config, cid)
    b.say(f"Removing intermediate container {cid[:12]}\n")


def copy(b: Builder, state: StageState, c: ins.Copy, is_add: bool) -> None:
    from engine.build.copying import Owner, resolve_chown

    env = b.env(state)
    sources = [expand(s, env, b.escape) for s in c.sources]
    dest = expand(c.dest, env, b.escape)
    chown = expand(c.chown, env, b.escape) if c.chown else None
    from_ = expand(c.from_, env, b.escape) if c.from_ else None
    for source in sources:
        if is_add and source.lower().startswith(("http://", "https://", "git@", "git://")):
            raise StepFailed(f"ADD {source}: remote sources are not supported: dockui builds never reach the "
                             "network (download it into the context and ADD the file)")
    items, hashes = copy_items(b, sources, from_, is_add)
    if len(items) > 1 and not dest.endswith("/"):
        raise StepFailed(f"When using {c.keyword} with more than one source file, the destination must be a "
                         "directory and end with a /")
    source_hash = hashes[0] if len(hashes) == 1 else "multi:" + _sha(",".join(hashes))
    if not dest.startswith("/"):
        workdir = state.config.get("WorkingDir") or "/"
        keep_slash = dest.endswith("/") or dest in (".", "./")
        dest = posixpath.join(workdir, dest)
        dest = posixpath.normpath(dest) + ("/" if keep_slash else "")
    chown_text = f"--chown={chown} " if chown else ""
    comment = f"{c.keyword} {chown_text}{source_hash} in {dest} "
    probe = b.container_config(state, [*b.shell(state), "#(nop) " + comment])
    if b.use_cache(state, probe):
        return
    view = b.view(state)
    owner = resolve_chown(view, chown) if chown else Owner(0, 0)
    from engine.build.copying import LayerBuilder

    layer = LayerBuilder(view, owner, b.config.tmp_dir)
    try:
        dest_view = view.lookup(dest)
        into_dir = dest.endswith("/") or (dest_view is not None and dest_view.is_dir)
        for item in items:
            layer.copy_item(item if not chown else _without_owner(item), dest, into_dir or item.is_dir)
        b.commit(state, probe, layer)
    finally:
        layer.close()


def copy_items(b: Builder, sources: list[str], from_: str | None, is_add: bool) -> tuple[list[Any], list[str]]:
    from engine.build.copying import Item, is_archive

    items: list[Any] = []
    hashes: list[str] = []
    if from_ is not None:
        view = b.view_of(b.stage_image(from_) or b.base_image(from_))
        for source in sources:
            found = view.lookup(source)
            if found is None:
                raise StepFailed(f"COPY failed: stat {source}: file does not exist in {from_}")
            owner = _owner(found.st)
            if found.is_dir:
                children = tuple((rel, e.host, e.st) for rel, e in view.walk(found.path))
                items.append(Item(os.path.basename(found.path), found.host, True, children, owner))
                hashes.append("dir:" + checksum([(r, h) for r, h, _ in children]))
            else:
                items.append(Item(os.path.basename(found.path), found.host, False, (), owner))
                hashes.append("file:" + checksum([(os.path.basename(found.path), found.host)]))
        return items, hashes
    for pattern in sources:
        matched = b.context.sources(pattern)
        if not matched:
            raise StepFailed(f"COPY failed: no source files were specified ({pattern})")
        for source in matched:
            path = source.path
            if path.is_dir():
                entries = b.context.walk(source)
                children = tuple((rel, host, os.lstat(host)) for rel, host in entries)
                items.append(Item(os.path.basename(source.rel), path, True, children))
                hashes.append("dir:" + checksum(entries))
            else:
                archive = is_add and path.is_file() and is_archive(path)
                items.append(Item(os.path.basename(source.rel), path, False, (), None, archive))
                hashes.append("file:" + checksum([(os.path.basename(source.rel), path)]))
    return items, hashes


STEPS: dict[str, Callable[..., None]] = {
    "ENV": env_step, "LABEL": label_step, "MAINTAINER": maintainer_step, "ARG": arg_step, "CMD": cmd_step,
    "ENTRYPOINT": entrypoint_step, "SHELL": shell_step, "USER": user_step, "STOPSIGNAL": stopsignal_step,
    "EXPOSE": expose_step, "VOLUME": volume_step, "HEALTHCHECK": healthcheck_step, "ONBUILD": onbuild_step,
    "WORKDIR": workdir_step, "COPY": copy_step, "ADD": add_step, "RUN": run_step,
}


# --- helpers ----------------------------------------------------------------------------------------


def _replace_env(env: list[str], entries: list[str]) -> list[str]:
    for entry in entries:
        key = entry.partition("=")[0]
        for i, existing in enumerate(env):
            if existing.partition("=")[0] == key:
                env[i] = entry
                break
        else:
            env.append(entry)
    return env


def _port_keys(word: str) -> list[str]:
    port, _, proto = word.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    port = port.rsplit(":", 1)[-1]
    start, _, end = port.partition("-")
    if not start.isdigit() or (end and not end.isdigit()):
        raise InvalidArgument(f"invalid containerPort: {port}")
    first, last = int(start), int(end or start)
    if not 0 < first <= last <= 65535:
        raise InvalidArgument(f"invalid port range: {port}")
    return [f"{p}/{proto}" for p in range(first, last + 1)]


def _go_quote(values: list[str] | None) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(json.dumps(v) for v in values or []) + "]"


def _go_list(values: Any) -> str:
    return "[" + " ".join(values) + "]"


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _owner(st: os.stat_result) -> Any:
    from engine.build.copying import Owner

    return Owner(st.st_uid, st.st_gid)


def _without_owner(item: Any) -> Any:
    from dataclasses import replace

    return replace(item, owner=None)
