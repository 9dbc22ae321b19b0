"""Parent images, as Docker's image verbs treat them: the classic builder leaves one image per step,
each the parent of the next (the build cache). `images` hides the untagged ones that are parents
(intermediate images) unless -a, `dangling=true` means untagged and no child, `rmi` deletes the
untagged parents up the chain that nothing else uses (not with --no-prune) and refuses an image
with children, `image prune` leaves a tagged image's parents alone (-a: everything unused goes),
and inspect's Parent and `history` follow the chain. Through the CLI on the real kernel (images
built with `dockui build`), and through the docker CLI, docker-py and raw requests against the
Engine API service.

The step images are read from the build's own ` ---> <id>` lines and the store's files, not
through the code under test.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from engine.image.digest import chain_ids
from tests.service_support import DOCKER, Service, service_fixture  # noqa: F401
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401

pytestmark = pytest.mark.root

# FROM, then four steps: ENV (no layer), RUN (a layer), COPY (a layer), CMD (no layer).
DOCKERFILE = 'FROM busybox\nENV STAGE=one\nRUN echo built > /built.txt\nCOPY hello.txt /hello.txt\nCMD ["cat", "/hello.txt"]\n'
# Shares the ENV and RUN steps with DOCKERFILE (cache hits), then a step of its own.
SIBLING = 'FROM busybox\nENV STAGE=one\nRUN echo built > /built.txt\nCMD ["sh"]\n'
# A chain of its own on busybox.
OTHER = "FROM busybox\nENV OTHER=1\nRUN echo other > /other.txt\n"

_STEP_LINE = re.compile(r"^ ---> ([0-9a-f]{12})$", re.MULTILINE)


def context(tmp_path: Path, dockerfile: str, name: str = "ctx") -> Path:
    ctx = tmp_path / name
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello\n")
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def stored_ids(engine: Engine) -> list[str]:
    content = engine.config.image_dir / "imagedb" / "content" / "sha256"
    return ["sha256:" + p.name for p in content.iterdir()] if content.is_dir() else []


def full_ids(engine: Engine, output: str) -> list[str]:
    """The images a build's output names (` ---> <short id>`), bottom first: the FROM image, then
    one per step."""
    ids = stored_ids(engine)
    found = []
    for short in _STEP_LINE.findall(output):
        [full] = [i for i in ids if i[7:19] == short]
        found.append(full)
    return found


def build(engine: Engine, ctx: Path, *tags: str) -> list[str]:
    """`dockui build` (RUN without a network: these tests need none); the images, as full_ids."""
    args = [a for tag in tags for a in ("-t", tag)]
    out = engine.out("build", "--network", "none", *args, str(ctx), timeout=120)
    return full_ids(engine, out)


def listed(engine: Engine, *args: str) -> list[str]:
    return engine.out("images", "-q", "--no-trunc", *args).split()


def config_of(engine: Engine, image_id: str) -> dict:
    return json.loads((engine.config.image_dir / "imagedb" / "content" / "sha256" / image_id[7:]).read_bytes())


def top_chain(engine: Engine, image_id: str) -> str:
    return chain_ids(config_of(engine, image_id)["rootfs"]["diff_ids"])[-1]


def layer_size(engine: Engine, chain: str) -> int:
    return int((engine.config.image_dir / "layerdb" / "sha256" / chain[7:] / "size").read_text())


def short(image_id: str) -> str:
    return image_id[7:19]


def child_conflict(image_id: str) -> str:
    return f"conflict: unable to delete {short(image_id)} (cannot be forced) - image has dependent child images"


# --- the CLI ------------------------------------------------------------------------------------


def test_images_hides_intermediate_images_unless_all_and_dangling_means_no_child(engine: Engine, tmp_path: Path) -> None:
    busybox, env, run, copy, top = build(engine, context(tmp_path, DOCKERFILE), "app:1")

    assert listed(engine) == [top, busybox]
    assert listed(engine, "-a") == [top, copy, run, env, busybox]
    table = engine.out("images", "-a", "--format", "{{.Repository}} {{.Tag}} {{.ID}}").splitlines()
    assert table == [f"app 1 {short(top)}", *(f"<none> <none> {short(i)}" for i in (copy, run, env)),
                     f"busybox latest {short(busybox)}"]
    assert listed(engine, "-f", "dangling=true") == []  # a build's cache steps are not dangling
    assert listed(engine, "-a", "-f", "dangling=false") == [top, busybox]

    # an untagged build: its last image is dangling (no child), the steps it shares are not
    more = build(engine, context(tmp_path, OTHER, "other"))
    assert more[0] == busybox and len(more) == 3
    assert listed(engine, "-f", "dangling=true") == [more[2]]
    assert listed(engine) == [more[2], top, busybox]
    assert set(listed(engine, "-a")) == {top, copy, run, env, busybox, *more}


def test_rmi_deletes_untagged_parents_up_the_chain_until_something_else_uses_one(engine: Engine, tmp_path: Path) -> None:
    busybox, env, run, copy, top = build(engine, context(tmp_path, DOCKERFILE), "app:1")
    sibling = build(engine, context(tmp_path, SIBLING, "sibling"), "app:2")
    assert sibling[:3] == [busybox, env, run]  # the cache: same parents
    copy_layer, run_layer = top_chain(engine, copy), top_chain(engine, run)

    # app:1's own images and the COPY layer go; the RUN step stays for app:2
    assert engine.out("rmi", "app:1").splitlines() == [
        "Untagged: app:1", f"Deleted: {top}", f"Deleted: {copy}", f"Deleted: {copy_layer}"]
    assert set(stored_ids(engine)) == {busybox, env, run, sibling[3]}

    # a container on the ENV step keeps it (and the tagged busybox stops a chain anyway)
    container = engine.out("create", "--network", "none", env, "true").strip()
    try:
        assert engine.out("rmi", "app:2").splitlines() == [
            "Untagged: app:2", f"Deleted: {sibling[3]}", f"Deleted: {run}", f"Deleted: {run_layer}"]
        assert set(stored_ids(engine)) == {busybox, env}
        assert listed(engine, "-f", "dangling=true") == [env]  # no child left: dangling now
    finally:
        engine.out("rm", container)
    assert engine.out("rmi", env).splitlines() == [f"Deleted: {env}"]  # no layer of its own
    assert stored_ids(engine) == [busybox]


def test_rmi_refuses_an_image_with_children_and_no_prune_keeps_the_parents(engine: Engine, tmp_path: Path) -> None:
    busybox, env, run, copy, top = build(engine, context(tmp_path, DOCKERFILE), "app:1")

    for args in ((run,), ("-f", run), (short(run),)):
        refused = engine.cli("rmi", *args)
        assert refused.returncode == 1 and refused.stdout == b""
        assert refused.stderr.decode() == f"Error: {child_conflict(run)}\n"
    assert set(stored_ids(engine)) == {busybox, env, run, copy, top}

    # a tagged parent by name: the name goes, the image stays (now intermediate: hidden, not dangling)
    assert engine.out("rmi", "busybox").splitlines() == ["Untagged: busybox:latest"]
    assert listed(engine) == [top] and listed(engine, "-a")[-1] == busybox
    assert listed(engine, "-f", "dangling=true") == []

    assert engine.out("rmi", "--no-prune", "app:1").splitlines() == ["Untagged: app:1", f"Deleted: {top}"]
    assert listed(engine, "-f", "dangling=true") == [copy]  # the parents stay; the COPY step is a head now
    assert set(stored_ids(engine)) == {busybox, env, run, copy}

    # by ID, the chain goes up to and including busybox, untagged and unused now
    copy_layer, run_layer, busybox_layer = (top_chain(engine, i) for i in (copy, run, busybox))
    assert engine.out("rmi", copy).splitlines() == [
        f"Deleted: {copy}", f"Deleted: {copy_layer}", f"Deleted: {run}", f"Deleted: {run_layer}",
        f"Deleted: {env}", f"Deleted: {busybox}", f"Deleted: {busybox_layer}"]
    assert stored_ids(engine) == []


def test_image_prune_keeps_a_tagged_images_parents_and_prune_all_takes_them(engine: Engine, tmp_path: Path) -> None:
    busybox, env, run, copy, top = build(engine, context(tmp_path, DOCKERFILE), "app:1")
    _, other_env, other_top = build(engine, context(tmp_path, OTHER, "other"))
    other_layer = top_chain(engine, other_top)

    # the dangling image and its untagged parent go; busybox (tagged) stops the chain
    pruned = engine.out("image", "prune", "-f").splitlines()
    assert pruned[:5] == ["Deleted Images:", f"deleted: {other_top}", f"deleted: {other_layer}",
                          f"deleted: {other_env}", ""]
    assert set(stored_ids(engine)) == {busybox, env, run, copy, top}  # app:1's cache steps stay
    assert engine.out("image", "prune", "-f").splitlines()[0] == "Total reclaimed space: 0B"

    container = engine.out("create", "--network", "none", "busybox", "true").strip()
    try:
        pruned = engine.out("image", "prune", "-a", "-f").splitlines()
        assert pruned[:2] == ["Deleted Images:", "untagged: app:1"]
        assert [line for line in pruned if line.startswith("deleted: ") and line[9:] in (top, copy, run, env)] == [
            f"deleted: {i}" for i in (top, copy, run, env)]
        assert stored_ids(engine) == [busybox]  # a container uses it
    finally:
        engine.out("rm", container)

    # a container on app:1 keeps its whole chain, and busybox, which still has a child, loses only its name
    busybox, env, run, copy, top = build(engine, context(tmp_path, DOCKERFILE, "again"), "app:1")
    container = engine.out("create", "--network", "none", "app:1").strip()
    try:
        pruned = engine.out("image", "prune", "-a", "-f").splitlines()
        assert pruned[:3] == ["Deleted Images:", "untagged: busybox:latest", ""]
        assert set(stored_ids(engine)) == {busybox, env, run, copy, top}
        assert listed(engine) == [top] and listed(engine, "-a")[-1] == busybox
    finally:
        engine.out("rm", container)


def test_inspect_parent_and_history_follow_the_build_steps(engine: Engine, tmp_path: Path) -> None:
    busybox, env, run, copy, top = build(engine, context(tmp_path, DOCKERFILE), "app:1")

    parents = engine.out("image", "inspect", "-f", "{{.Parent}}", top, copy, run, env, busybox).splitlines()
    assert parents == [copy, run, env, busybox, ""]

    rows = engine.out("history", "app:1").splitlines()
    assert rows[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert [row.split()[0] for row in rows[1:]] == [short(i) for i in (top, copy, run, env, busybox)]
    full = engine.out("history", "--no-trunc", "app:1").splitlines()[1:]
    assert [row.split()[0] for row in full] == [top, copy, run, env, busybox]
    by = [row.split("ago", 1)[1].strip() for row in full]
    assert by[0].startswith('/bin/sh -c #(nop)  CMD ["cat" "/hello.txt"]')
    assert by[1].startswith("/bin/sh -c #(nop) COPY file:") and " in /hello.txt" in by[1]
    assert by[2].startswith("/bin/sh -c echo built > /built.txt")
    assert by[3].startswith("/bin/sh -c #(nop)  ENV STAGE=one")


def test_commit_links_the_containers_image_as_parent(engine: Engine) -> None:
    """Docker's commit records the container's image as the new image's Parent; its chain then
    keeps the base as a parent (`rmi` of the base only untags it while the child lives)."""
    engine.out("run", "--name", "c1", "--network", "none", "busybox", "touch", "/made")
    committed = engine.out("commit", "c1", "made:1").strip()
    base = engine.out("image", "inspect", "-f", "{{.Id}}", "busybox").strip()
    assert engine.out("image", "inspect", "-f", "{{.Parent}}", committed).strip() == base
    engine.out("rm", "c1")
    assert engine.out("rmi", "busybox").splitlines() == ["Untagged: busybox:latest"]
    engine.out("rmi", "made:1")  # and the untagged base goes with it
    assert engine.out("images", "-aq") == ""


def test_system_df_counts_no_intermediate_image_and_sizes_stay_whole(engine: Engine, tmp_path: Path) -> None:
    busybox, _env, run, copy, top = build(engine, context(tmp_path, DOCKERFILE), "app:1")

    rows = engine.out("system", "df", "--format", "{{.Type}} {{.TotalCount}}").splitlines()
    assert rows[0] == "Images 2"
    verbose = engine.out("system", "df", "-v").split("Images space usage:")[1].split("Containers space usage:")[0]
    # docker's columns: REPOSITORY TAG IMAGE ID ...
    assert sorted(line.split()[2] for line in verbose.strip().splitlines()[1:]) == sorted([short(top), short(busybox)])

    # an image's size is all its layers, the parents' included
    expected = layer_size(engine, top_chain(engine, busybox)) + layer_size(engine, top_chain(engine, run)) + \
        layer_size(engine, top_chain(engine, copy))
    assert engine.out("image", "inspect", "-f", "{{.Size}}", "app:1").strip() == str(expected)
    sizes = dict(line.split() for line in engine.out("images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Size}}").splitlines())
    from engine.cli.output import human_size

    assert sizes[top] == human_size(expected)
    assert sizes[_env] == sizes[busybox] == human_size(layer_size(engine, top_chain(engine, busybox)))


def test_add_image_links_a_parent_under_the_store_lock(engine_config, busybox_imported) -> None:  # noqa: ANN001
    """The seam a builder or a commit uses: the link is written with the image, a missing parent
    refused before anything is written."""
    from engine.container.usage import container_uses
    from engine.errors import Conflict, NotFound
    from engine.image.store import ImageStore

    store = ImageStore(engine_config, containers=container_uses)
    base = busybox_imported
    child_config = dict(base.config, created="2030-01-01T00:00:00.000000Z")
    child = store.add_image(json.dumps(child_config).encode(), [], parent=base.id)
    assert child.parent == base.id and store.inspect(child.id)["Parent"] == base.id
    with pytest.raises(Conflict, match="image has dependent child images"):
        store.remove(base.id, force=True)

    orphan_config = json.dumps(dict(base.config, created="2031-01-01T00:00:00.000000Z")).encode()
    missing = "sha256:" + "0" * 64
    with pytest.raises(NotFound, match="No such image: " + missing):
        store.add_image(orphan_config, [], parent=missing)
    assert {r.id for r in store.list_images()} == {base.id, child.id}


# --- the Engine API: the docker CLI, docker-py, raw requests ---------------------------------------


def docker_build(service: Service, ctx: Path, *tags: str) -> list[str]:
    args = [a for tag in tags for a in ("-t", tag)]
    built = subprocess.run([DOCKER or "docker", "build", "--network", "none", *args, str(ctx)], env={**service.env, "DOCKER_BUILDKIT": "0"},
                           capture_output=True, timeout=180)
    assert built.returncode == 0, built.stdout.decode() + built.stderr.decode()
    return full_ids(service.engine, built.stdout.decode())


@pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")
def test_engine_api_lists_inspects_and_refuses_as_docker(service: Service, tmp_path: Path) -> None:
    busybox, env, run, copy, top = docker_build(service, context(tmp_path, DOCKERFILE), "app:1")

    assert service.docker_out("images", "-q", "--no-trunc").split() == [top, busybox]
    assert service.docker_out("images", "-a", "-q", "--no-trunc").split() == [top, copy, run, env, busybox]
    assert service.docker_out("images", "-q", "-f", "dangling=true") == ""
    client = service.client()
    try:
        assert [i.id for i in client.images.list()] == [top, busybox]
        assert [i.id for i in client.images.list(all=True)] == [top, copy, run, env, busybox]
        assert client.images.list(filters={"dangling": True}) == []
        assert client.images.get("app:1").attrs["Parent"] == copy
    finally:
        client.close()
    rows = {row["Id"]: row for row in service.request("GET", "/v1.43/images/json?all=1").json()}
    assert [rows[i]["ParentId"] for i in (top, copy, run, env, busybox)] == [copy, run, env, busybox, ""]
    assert service.docker_out("image", "inspect", "-f", "{{.Parent}}", env).strip() == busybox
    history = service.docker_out("history", "--no-trunc", "--format", "{{.ID}}\t{{.CreatedBy}}", "app:1").splitlines()
    assert [row.split("\t")[0] for row in history] == [top, copy, run, env, busybox]
    assert history[2].split("\t")[1] == "/bin/sh -c echo built > /built.txt"
    assert service.docker_out("system", "df", "--format", "{{.Type}} {{.TotalCount}}").splitlines()[0] == "Images 2"

    refused = service.docker("rmi", run)
    assert refused.returncode == 1
    assert refused.stderr.decode().strip() == f"Error response from daemon: {child_conflict(run)}"
    reply = service.request("DELETE", f"/v1.43/images/{run}?force=1")
    assert reply.status == 409 and reply.json() == {"message": child_conflict(run)}
    assert run in stored_ids(service.engine)


@pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")
def test_engine_api_rmi_and_prune_take_the_parents_as_docker(service: Service, tmp_path: Path) -> None:
    busybox, env, run, copy, top = docker_build(service, context(tmp_path, DOCKERFILE), "app:1")

    removed = service.docker_out("rmi", "--no-prune", "app:1").splitlines()
    assert removed == ["Untagged: app:1", f"Deleted: {top}"]
    assert service.docker_out("images", "-q", "--no-trunc", "-f", "dangling=true").split() == [copy]
    layers = [top_chain(service.engine, i) for i in (copy, run)]
    client = service.client()
    try:
        answer = client.api.remove_image(copy)  # docker-py's raw answer: Docker's list of records
        assert answer == [{"Deleted": copy}, {"Deleted": layers[0]}, {"Deleted": run}, {"Deleted": layers[1]},
                          {"Deleted": env}]
        assert set(stored_ids(service.engine)) == {busybox}  # tagged: the chain stops there

        busybox, env, run, copy, top = docker_build(service, context(tmp_path, DOCKERFILE, "again"), "app:1")
        _, other_env, other_top = docker_build(service, context(tmp_path, OTHER, "other"))
        other_layer = top_chain(service.engine, other_top)
        pruned = client.images.prune()  # dangling only
        assert pruned["ImagesDeleted"] == [{"Deleted": other_top}, {"Deleted": other_layer}, {"Deleted": other_env}]
        assert set(stored_ids(service.engine)) == {busybox, env, run, copy, top}
    finally:
        client.close()
    service.docker_out("create", "--name", "keeper", "--network", "none", "busybox", "true")
    try:
        pruned = service.docker_out("image", "prune", "-a", "-f").splitlines()
        assert "untagged: app:1" in pruned
        assert [line for line in pruned if line[9:] in (top, copy, run, env)] == [f"deleted: {i}" for i in (top, copy, run, env)]
        assert stored_ids(service.engine) == [busybox]
    finally:
        service.docker_out("rm", "keeper")
