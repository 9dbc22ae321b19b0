"""Mounts as Docker's inspect shows them, and volume options given through `--mount`/`Mounts`.

The expected values are read off moby's code, not dockui's output:
- api/types/container MountPoint: `Type`, `Name` and `Driver` are omitempty; `Mode` is the mode the
  user gave (volume/mounts linux_parser ParseMountRaw: "" for `-v /src:/dst`), a volume of the local
  driver with none gets "z" (daemon/volumes_unix.go setBindModeIfNull, for Binds and Mounts alike),
  an anonymous volume from Config.Volumes or the image none (container.AddMountPointWithVolume); a
  bind's Propagation defaults to rprivate, anything else's is "". Source and Destination are
  path.Clean'd (parseMountSpec), while Binds keep the specs as given.
- `--tmpfs` (HostConfig.Tmpfs) is no MountPoint; a `--mount type=tmpfs` is (registerMountPoints).
- HostConfig.Mounts is the create's mount.Mount list as given (Go's omitempty encoding); `-v` stays in
  HostConfig.Binds (Config.Volumes for `-v /dst`).
- VolumeOptions.DriverConfig.Options and Labels create the volume with them when it does not exist
  (registerMountPoints: volumes.Create(WithCreateOptions, WithCreateLabels)); the docker CLI's keys
  are `volume-driver`, `volume-opt`, `volume-label` (cli opts/mount.go).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture
from tests.test_rootfs import WRITE_BOTH as DEPTH_SCRIPT
from tests.test_rootfs import source_with_submount_fixture  # noqa: F401 - a bind source with a tmpfs below it

pytestmark = pytest.mark.root

TMPFS_OPTS = "volume-opt=type=tmpfs,volume-opt=device=tmpfs"


def _by_destination(mounts: list[dict]) -> dict[str, dict]:
    """Docker keeps MountPoints in a map: their order in inspect is not defined."""
    return {m["Destination"]: m for m in mounts}


def _expected_mounts(engine_root: Path, src: Path, anon: str) -> dict[str, dict]:
    volumes = engine_root / "volumes"
    bind = {"Type": "bind", "Source": str(src), "RW": True, "Mode": "", "Propagation": "rprivate"}
    volume = {"Type": "volume", "Driver": "local", "RW": True, "Mode": "z", "Propagation": ""}
    return {
        "/b1": bind | {"Destination": "/b1"},
        "/b2": bind | {"Destination": "/b2", "Mode": "ro", "RW": False},
        "/b3": bind | {"Destination": "/b3"},
        "/v1": volume | {"Name": "named", "Source": str(volumes / "named" / "_data"), "Destination": "/v1"},
        "/v2": volume | {"Name": "named", "Source": str(volumes / "named" / "_data"), "Destination": "/v2",
                         "Mode": "ro", "RW": False},
        "/v3": volume | {"Name": "mv", "Source": str(volumes / "mv" / "_data"), "Destination": "/v3"},
        "/anon": volume | {"Name": anon, "Source": str(volumes / anon / "_data"), "Destination": "/anon", "Mode": ""},
        "/t1": {"Type": "tmpfs", "Source": "", "Destination": "/t1", "Mode": "", "RW": True, "Propagation": ""},
    }


def _expected_host_mounts(src: Path) -> list[dict]:
    return [
        {"Type": "bind", "Source": str(src), "Target": "/b3"},
        {"Type": "volume", "Source": "mv", "Target": "/v3", "VolumeOptions": {"Labels": {"a": "b"}}},
        {"Type": "tmpfs", "Target": "/t1", "TmpfsOptions": {"SizeBytes": 2 << 20, "Mode": 0o1770}},
    ]


MOUNT_FLAGS = ("--mount", "type=bind,src={src},dst=/b3", "--mount", "type=volume,src=mv,dst=/v3,volume-label=a=b",
               "--mount", "type=tmpfs,dst=/t1,tmpfs-size=2m,tmpfs-mode=1770")


def _flags(src: Path) -> list[str]:
    return ["-v", f"{src}/:/b1", "-v", f"{src}:/b2/:ro", "-v", "named:/v1", "-v", "named:/v2:ro", "-v", "/anon",
            *(f.format(src=src) for f in MOUNT_FLAGS), "--tmpfs", "/t2"]


def _anonymous(mounts: list[dict]) -> str:
    return _by_destination(mounts)["/anon"]["Name"]


def test_cli_inspect_shows_mounts_and_host_config_mounts_as_docker(engine: Engine, tmp_path: Path) -> None:
    """Also `ps --format {{.Mounts}}`: the docker CLI's ContainerContext.Mounts, each MountPoint's
    Name or, without one, its Source ("" for the tmpfs); the --tmpfs is none of them."""
    src = tmp_path / "src"
    src.mkdir()
    engine.out("create", "--name", "mounts", "--network", "none", *_flags(src), "busybox", "true")
    mounts = json.loads(engine.out("inspect", "-f", "{{json .Mounts}}", "mounts"))
    assert _by_destination(mounts) == _expected_mounts(engine.config.root, src, _anonymous(mounts))
    assert len(mounts) == 8  # the --tmpfs at /t2 is not among them
    host = json.loads(engine.out("inspect", "-f", "{{json .HostConfig}}", "mounts"))
    assert host["Mounts"] == _expected_host_mounts(src)
    assert host["Binds"] == [f"{src}/:/b1", f"{src}:/b2/:ro", "named:/v1", "named:/v2:ro"]  # as given
    assert host["Tmpfs"] == {"/t2": ""}
    assert json.loads(engine.out("volume", "inspect", "-f", "{{json .Labels}}", "mv")) == {"a": "b"}
    listed = engine.out("ps", "-a", "--no-trunc", "--format", "{{.Mounts}}").strip()
    assert sorted(listed.split(",")) == sorted(["named", "named", "mv", _anonymous(mounts), *[str(src)] * 3, ""])
    plain = engine.out("create", "--network", "none", "busybox", "true").strip()
    assert "Mounts" not in engine.inspect(plain)["HostConfig"]  # omitempty, as Docker's
    # --volumes-from: moby copies each MountPoint with no Mode, writable only if it was and `ro` is not given
    for mode, writable in (("rw", {"/b1", "/b3", "/v1", "/v3", "/anon"}), ("ro", set())):
        engine.out("create", "--name", f"from-{mode}", "--network", "none", "--volumes-from", f"mounts:{mode}",
                   "busybox", "true")
        shared = {m["Destination"]: (m["Mode"], m["RW"]) for m in engine.inspect(f"from-{mode}")["Mounts"]
                  if m["Type"] != "tmpfs"}
        assert shared == {d: ("", d in writable) for d in ("/b1", "/b2", "/b3", "/v1", "/v2", "/v3", "/anon")}
    engine.out("rm", "-v", "from-rw", "from-ro", "mounts", plain)
    engine.out("volume", "rm", "named", "mv")


def test_mount_flag_volume_options_create_the_volume_with_them(engine: Engine) -> None:
    spec = f'type=volume,src=tv,dst=/data,volume-driver=local,{TMPFS_OPTS},"volume-opt=o=size=8m,mode=0750"'
    out = engine.out("run", "--rm", "--network", "none", "--mount", spec, "busybox",
                     "sh", "-c", "stat -c %a /data; df -k /data | tail -1")
    mode, df = out.splitlines()
    assert mode == "750" and df.split()[:2] == ["tmpfs", "8192"]
    doc = json.loads(engine.out("volume", "inspect", "tv"))[0]
    assert doc["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=8m,mode=0750"}
    # an existing volume keeps its options, as Docker's volume store returns it unchanged
    cid = engine.out("create", "--network", "none", "--mount", "type=volume,src=tv,dst=/d,volume-opt=type=none,"
                     "volume-opt=o=bind,volume-opt=device=/nonexistent", "busybox", "true").strip()
    assert json.loads(engine.out("volume", "inspect", "tv"))[0]["Options"]["type"] == "tmpfs"
    host = engine.inspect(cid)["HostConfig"]["Mounts"]
    assert host == [{"Type": "volume", "Source": "tv", "Target": "/d", "VolumeOptions": {"DriverConfig": {
        "Options": {"type": "none", "o": "bind", "device": "/nonexistent"}}}}]
    engine.out("rm", cid)
    engine.out("volume", "rm", "tv")
    # anonymous: mounted while used, removed with --rm
    out = engine.out("run", "--rm", "--network", "none", "--mount", f"type=volume,dst=/a,{TMPFS_OPTS}", "busybox",
                     "sh", "-c", "df -k /a | tail -1")
    assert out.split()[0] == "tmpfs"
    assert engine.out("volume", "ls", "-q") == ""


def test_mount_flag_errors_are_dockers_and_create_nothing(engine: Engine, tmp_path: Path) -> None:
    for spec, message in (
        ("type=volume,dst=/x,bind-propagation=rshared", "cannot mix 'bind-*' options with mount type 'volume'"),
        ("type=tmpfs,dst=/x,volume-opt=a=b", "cannot mix 'volume-*' options with mount type 'tmpfs'"),
        ("type=volume,dst=/x,volume-driver=nfs", 'error looking up volume plugin nfs: plugin "nfs" not found'),
        (f"type=volume,src=bad,dst=/x,{TMPFS_OPTS},volume-opt=foo=bar", 'invalid option: "foo"'),
        ("type=volume,dst=/x,volume-subpath=a", "VolumeOptions.Subpath (--mount volume-subpath) is not supported"),
        ("type=bind,src=/tmp,dst=/x,bind-recursive=sideways", "invalid value for bind-recursive: sideways"),
        ("type=bind,src=/tmp,dst=/x,bind-recursive=writable", "option 'bind-recursive=writable' requires 'readonly'"),
        ("type=bind,src=/tmp,dst=/x,ro,bind-recursive=readonly", "option 'bind-recursive=readonly' requires "
         "'bind-propagation=rprivate' to be specified in conjunction"),
        ("type=volume,dst=/x,readonly=maybe", "invalid boolean value"),
        ("type=volume,dst=/x,colour=red", "unknown option 'colour' in 'colour=red'"),
        ("type=volume,dst=/x,tmpfs-size", "invalid field 'tmpfs-size' must be a key=value pair"),
    ):
        result = engine.cli("run", "--rm", "--network", "none", "--mount", spec, "busybox", "true")
        err = result.stderr.decode()
        assert result.returncode == 125 and message in err and len(err.strip().splitlines()) == 1, (spec, err)
    assert engine.out("ps", "-aq") == "" and engine.out("volume", "ls", "-q") == ""
    made = tmp_path / "made"  # bind-create-src: Docker's CreateMountpoint makes the missing source
    cid = engine.out("create", "--network", "none", "--mount", f"type=bind,src={made},dst=/m,bind-create-src",
                     "busybox", "true").strip()
    assert made.is_dir()
    assert engine.inspect(cid)["HostConfig"]["Mounts"] == [
        {"Type": "bind", "Source": str(made), "Target": "/m", "BindOptions": {"CreateMountpoint": True}}]
    engine.out("rm", cid)
    # bind-recursive=writable: ReadOnlyNonRecursive, which dockui's read-only bind is (its top mount only)
    cid = engine.out("create", "--network", "none", "--mount", f"type=bind,src={made},dst=/m,bind-recursive=writable,ro",
                     "busybox", "true").strip()
    data = engine.inspect(cid)
    assert data["HostConfig"]["Mounts"] == [{"Type": "bind", "Source": str(made), "Target": "/m", "ReadOnly": True,
                                             "BindOptions": {"ReadOnlyNonRecursive": True}}]
    assert [(m["Mode"], m["RW"]) for m in data["Mounts"]] == [("", False)]
    engine.out("rm", cid)


def test_docker_cli_inspect_and_volume_options_through_the_service(service: Service, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    service.docker("create", "--name", "dm", "--network", "none", *_flags(src), "busybox", "true", check=True)
    mounts = json.loads(service.docker_out("inspect", "-f", "{{json .Mounts}}", "dm"))
    assert _by_destination(mounts) == _expected_mounts(service.engine.config.root, src, _anonymous(mounts))
    host = json.loads(service.docker_out("inspect", "-f", "{{json .HostConfig.Mounts}}", "dm"))
    expected = _expected_host_mounts(src)
    if "DriverConfig" in host[1].get("VolumeOptions", {}):  # the docker CLI up to v28 sends an empty one with any
        expected[1]["VolumeOptions"]["DriverConfig"] = {}  # volume-* key (its opts/mount.go); Docker keeps it as sent
    assert host == expected
    binds = service.docker_out("inspect", "-f", "{{json .HostConfig.Binds}}", "dm")
    assert sorted(json.loads(binds)) == sorted([f"{src}/:/b1", f"{src}:/b2/:ro", "named:/v1", "named:/v2:ro"])
    # dockui's templates read inspect as the docker CLI's typed one does: an omitted Name is "" and
    # a HostConfig without Mounts has a nil slice
    plain = service.docker_out("create", "--network", "none", "busybox", "true").strip()
    for ref, template in (("dm", "{{.Mounts}}"), ("dm", "{{json .Mounts}}"), ("plain", "{{.HostConfig.Mounts}}"),
                          ("dm", "{{range .Mounts}}[{{.Type}}|{{.Name}}|{{.Driver}}|{{.Mode}}|{{.RW}}]{{end}}"),
                          ("dm", "{{range .HostConfig.Mounts}}[{{.Type}}|{{.ReadOnly}}|{{.Consistency}}]{{end}}"),
                          ("plain", "{{json .HostConfig.Mounts}} {{len .Mounts}}")):
        ref = plain if ref == "plain" else ref
        assert service.engine.out("inspect", "-f", template, ref) == service.docker_out("inspect", "-f", template, ref)
    service.docker("rm", plain, check=True)
    listed = json.loads(service.docker_out("ps", "-a", "--no-trunc", "--format", "{{json .Mounts}}"))
    assert sorted(listed.split(",")) == sorted(["named", "named", "mv", _anonymous(mounts), *[str(src)] * 3, ""])
    service.docker("rm", "-v", "dm", check=True)
    spec = f'type=volume,src=dv,dst=/d,volume-driver=local,{TMPFS_OPTS},"volume-opt=o=size=4m"'
    out = service.docker_out("run", "--rm", "--network", "none", "--mount", spec, "busybox", "sh", "-c",
                             "df -k /d | tail -1")
    assert out.split()[:2] == ["tmpfs", "4096"]
    fmt = service.docker_out("volume", "inspect", "-f", "{{.Options.type}} {{.Options.o}}", "dv")
    assert fmt == "tmpfs size=4m\n"
    service.docker("volume", "rm", "named", "mv", "dv", check=True)


def test_docker_py_mounts_with_driver_config_labels_and_its_errors(service: Service) -> None:
    import docker

    client = service.client()
    try:
        driver = docker.types.DriverConfig("local", {"type": "tmpfs", "device": "tmpfs", "o": "size=4m"})
        mount = docker.types.Mount("/p", "pv", type="volume", labels={"k": "v"}, driver_config=driver)
        container = client.containers.create("busybox", ["sh", "-c", "df -k /p | tail -1"], mounts=[mount],
                                             network_mode="none")
        raw = client.api.inspect_container(container.id)
        assert raw["Mounts"] == [{
            "Type": "volume", "Name": "pv", "Source": str(service.engine.config.volumes_dir / "pv" / "_data"),
            "Destination": "/p", "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}]
        assert raw["HostConfig"]["Mounts"] == [{"Type": "volume", "Source": "pv", "Target": "/p", "VolumeOptions": {
            "Labels": {"k": "v"},
            "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs", "o": "size=4m"}}}}]
        volume = client.volumes.get("pv")
        assert volume.attrs["Labels"] == {"k": "v"} and volume.attrs["Options"]["type"] == "tmpfs"
        container.start()
        assert container.wait()["StatusCode"] == 0
        assert container.logs().split()[:2] == [b"tmpfs", b"4096"]
        container.remove()
        for driver_config, words in ((docker.types.DriverConfig("nfs"), 'plugin "nfs" not found'),
                                     (docker.types.DriverConfig("local", {"bogus": "1"}), 'invalid option: "bogus"')):
            bad = docker.types.Mount("/q", "qv", type="volume", driver_config=driver_config)
            with pytest.raises(docker.errors.APIError) as caught:
                client.containers.create("busybox", "true", mounts=[bad], network_mode="none")
            assert caught.value.status_code == 400 and words in str(caught.value.explanation)
        body = {"Image": "busybox", "HostConfig": {"Mounts": [{"Type": "volume", "Target": "/q",
                                                               "VolumeOptions": {"DriverConfig": "local"}}]}}
        reply = service.request("POST", "/v1.43/containers/create", body)
        assert reply.status == 400 and "DriverConfig: expected an object" in reply.json()["message"]
        assert client.containers.list(all=True) == [] and [v.name for v in client.volumes.list()] == ["pv"]
        volume.remove()
    finally:
        client.close()


def test_dockui_inspect_is_the_engine_apis_document(service: Service) -> None:
    """One inspect document for dockui's CLI and the Engine API: a container that never ran lists
    the networks it will join (its alias, a network connected before the start) and Docker's keys;
    a network's document is the API's too (labels, options, the predefined `none`)."""
    engine = service.engine
    engine.out("network", "create", "planned")
    cid = engine.out("create", "--network", "planned", "--network-alias", "al", "busybox", "true").strip()
    engine.out("network", "create", "later")
    engine.out("network", "connect", "--alias", "lt", "later", cid)
    ours = json.loads(engine.out("inspect", cid))[0]
    theirs = json.loads(service.docker("inspect", cid, check=True).stdout)[0]
    assert ours == theirs
    networks = ours["NetworkSettings"]["Networks"]
    assert sorted(networks) == ["later", "planned"]
    assert networks["planned"]["Aliases"] == ["al"] and networks["later"]["Aliases"] == ["lt"]
    assert ours["HostConfig"]["Runtime"] == "runc" and ours["ExecIDs"] is None
    for network in ("planned", "none"):  # networks too, the predefined ones included
        assert json.loads(engine.out("network", "inspect", network)) == json.loads(
            service.docker("network", "inspect", network, check=True).stdout)
    engine.out("rm", cid)
    engine.out("network", "rm", "planned", "later")


# A read-only bind's depth (moby's BindOptions since API 1.44): DEPTH_SCRIPT (test_rootfs's) writes at
# the bind's top and on a tmpfs the host mounted below its source; `ls` shows which mount /b/sub is.


def test_cli_read_only_binds_are_read_only_below_too(engine: Engine, source_with_submount: Path) -> None:
    """The dockui CLI speaks for docker CLI 28 against Docker 28 (API 1.51): `ro` is recursive, and
    `--mount bind-recursive=` picks the depth (docker/cli opts/mount.go), shown in HostConfig.Mounts."""
    src = source_with_submount

    def run(*flags: str) -> list[str]:
        return engine.out("run", "--rm", "--network", "none", *flags, "busybox", "sh", "-c", DEPTH_SCRIPT).split()

    tmpfs_ro, tmpfs_rw = ["top-ro", "sub-ro", "on-the-tmpfs"], ["top-ro", "sub-rw", "on-the-tmpfs", "x"]
    assert run("-v", f"{src}:/b:ro") == tmpfs_ro
    bind = f"type=bind,src={src},dst=/b"
    assert run("--mount", f"{bind},ro") == tmpfs_ro
    assert run("--mount", f"{bind},ro,bind-recursive=readonly,bind-propagation=rprivate") == tmpfs_ro
    assert run("--mount", f"{bind},readonly,bind-recursive=writable") == tmpfs_rw
    (src / "sub" / "x").unlink()
    assert run("--mount", f"{bind},ro,bind-recursive=disabled") == ["top-ro", "sub-ro", "under-the-tmpfs"]
    assert not (src / "top").exists()
    forced = f"{bind},ro,bind-recursive=readonly,bind-propagation=rprivate"
    for flags, expected in ((forced, {"ReadOnlyForceRecursive": True, "Propagation": "rprivate"}),
                            (f"{bind},ro,bind-recursive=disabled", {"NonRecursive": True})):
        cid = engine.out("create", "--network", "none", "--mount", flags, "busybox", "true").strip()
        assert engine.inspect(cid)["HostConfig"]["Mounts"] == [
            {"Type": "bind", "Source": str(src), "Target": "/b", "ReadOnly": True, "BindOptions": expected}]
        engine.out("rm", cid)
    for flags, words in (
        (f"{bind},bind-recursive=readonly", "option 'bind-recursive=readonly' requires 'readonly'"),
        (f"{bind},ro,bind-recursive=sometimes", 'must be "enabled", "disabled", "writable", or "readonly"'),
    ):
        result = engine.cli("run", "--rm", "--network", "none", "--mount", flags, "busybox", "true")
        err = result.stderr.decode()
        assert result.returncode == 125 and words in err and len(err.strip().splitlines()) == 1, err
    assert engine.out("ps", "-aq") == ""


def test_api_read_only_binds_follow_the_api_version(service: Service, source_with_submount: Path) -> None:
    """Through the socket the clients speak API 1.43 (dockui's newest), where Docker keeps a read-only
    bind read-only at its top only (moby's defaultReadOnlyNonRecursive) and refuses
    ReadOnlyForceRecursive; a bind of a 1.44+ client is read-only down its tree."""
    import docker

    src = source_with_submount
    out = service.docker_out("run", "--rm", "--network", "none", "-v", f"{src}:/b:ro", "busybox", "sh", "-c",
                             DEPTH_SCRIPT)
    assert out.split() == ["top-ro", "sub-rw", "on-the-tmpfs", "x"]
    (src / "sub" / "x").unlink()
    result = service.docker("run", "--rm", "--network", "none", "--mount",
                            f"type=bind,src={src},dst=/b,ro,bind-recursive=readonly,bind-propagation=rprivate",
                            "busybox", "true")  # the docker CLI refuses it itself at 1.43
    assert result.returncode == 125 and "bind-recursive=readonly requires API v1.44" in result.stderr.decode()
    forced = {"Type": "bind", "Source": str(src), "Target": "/b", "ReadOnly": True,
              "BindOptions": {"ReadOnlyForceRecursive": True}}
    for version in ("/v1.43", ""):
        reply = service.request("POST", f"{version}/containers/create",
                                {"Image": "busybox", "HostConfig": {"Mounts": [forced]}})
        assert reply.status == 400, reply.body
        assert reply.json()["message"] == "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"
    # moby sets ReadOnlyNonRecursive on the BindOptions the create's HostConfig holds: inspect shows
    # it where the client gave BindOptions, and nothing where it gave none
    for given, shown in (({"Propagation": "rprivate"}, {"Propagation": "rprivate", "ReadOnlyNonRecursive": True}),
                         (None, None)):
        mount = {"Type": "bind", "Source": str(src), "Target": "/b", "ReadOnly": True}
        reply = service.request("POST", "/v1.43/containers/create", {"Image": "busybox", "HostConfig": {
            "NetworkMode": "none", "Mounts": [mount | ({"BindOptions": given} if given else {})]}})
        assert reply.status == 201, reply.body
        cid = reply.json()["Id"]
        assert service.engine.inspect(cid)["HostConfig"]["Mounts"] == [mount | ({"BindOptions": shown} if shown else {})]
        service.engine.out("rm", cid)
    client = service.client()
    try:
        mount = docker.types.Mount("/b", str(src), type="bind", read_only=True)
        logs = client.containers.run("busybox", ["sh", "-c", DEPTH_SCRIPT], mounts=[mount], network_mode="none",
                                     remove=True)
        assert logs.split() == [b"top-ro", b"sub-rw", b"on-the-tmpfs", b"x"]
        assert client.containers.list(all=True) == []
    finally:
        client.close()
    (src / "sub" / "x").unlink()
    # what a client of API 1.44+ gets (this service refuses such a version, so the engine is asked
    # as the service asks it, with the version's default)
    from engine.container.mounts import prepare_mounts, sandbox_bind
    from engine.container.mountspec import MountSpec
    from engine.sandbox.rootfs import READONLY_RECURSIVE, READONLY_TOP

    for legacy, depth in ((True, READONLY_TOP), (False, READONLY_RECURSIVE)):
        made = prepare_mounts(service.engine.config, [f"{src}:/b:ro"], {}, [MountSpec("bind", str(src), "/m", True)],
                              legacy_read_only=legacy)
        assert [sandbox_bind(m).readonly_depth for m in made] == [depth, depth]
