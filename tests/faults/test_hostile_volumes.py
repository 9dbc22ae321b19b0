"""Volumes with the local driver's options (`volume create -o type=... -o device=... -o o=...`)
against a hostile user of the CLI: many users of one tmpfs started and stopped at once, a monitor
killed between its mount and its release, `volume rm` racing the starts of a bound host directory's
users, a mount that propagated below `_data`, `_data` swapped for a link to a host directory.

What must hold: `_data` is mounted exactly while a live container uses it (once, never stacked;
never left mounted with no user; never unmounted under a running one), and no removal deletes a
byte through a mount (a bound host directory keeps its files in every interleaving).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from engine.container import volumes
from engine.container.volumes import get_volume, is_mounted
from tests.faults.scoreboard import one_line_error, score, stderr_escapes
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root


def _data(engine: Engine, name: str) -> Path:
    return engine.config.volumes_dir / name / "_data"


def _mount_count(path: Path) -> int:
    with open("/proc/self/mountinfo") as f:
        return sum(line.split()[4] == str(path) for line in f)


def _at_once(engine: Engine, *verbs: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
    procs = [engine.popen(*verb, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for verb in verbs]
    return [subprocess.CompletedProcess(p.args, p.wait(60), *p.communicate()) for p in procs]


def _listing(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def test_many_users_of_one_tmpfs_started_and_stopped_at_once(engine: Engine) -> None:
    engine.out("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=4m", "shared")
    data = _data(engine, "shared")
    ids = [engine.out("create", "--network", "none", "-v", "shared:/data", "busybox", "sleep", "300").strip()
           for _ in range(4)]
    try:
        for round_ in range(2):  # a round of four stops at once left it mounted before the fix
            started = _at_once(engine, *(("start", c) for c in ids))
            running = [engine.inspect(c)["State"]["Running"] for c in ids]
            engine.out("exec", ids[0], "sh", "-c", f"echo {round_} > /data/r")
            seen = [engine.out("exec", c, "cat", "/data/r").strip() for c in ids[1:]]
            score("volume", f"four-starts-at-once-{round_}",
                  all(r.returncode == 0 for r in started) and all(running) and _mount_count(data) == 1
                  and seen == [str(round_)] * 3,
                  detail=f"running={running} mounts={_mount_count(data)} seen={seen}",
                  escapes=[e for r in started for e in stderr_escapes(r.stderr)])
            stopped = _at_once(engine, *(("stop", "-t", "0", c) for c in ids))
            score("volume", f"four-stops-at-once-{round_}", all(r.returncode == 0 for r in stopped),
                  detail=f"mounted={is_mounted(data)}",
                  leaks=["_data left mounted with no user"] if is_mounted(data) else [],
                  escapes=[e for r in stopped for e in stderr_escapes(r.stderr)])
        # one stops while another runs: the runner keeps its files
        engine.out("start", ids[0])
        engine.out("start", ids[1])
        engine.out("exec", ids[1], "sh", "-c", "echo kept > /data/k")
        engine.out("stop", "-t", "0", ids[0])
        kept = engine.cli("exec", ids[1], "cat", "/data/k").stdout
        score("volume", "stop-one-keeps-the-others-mount", kept == b"kept\n" and is_mounted(data),
              detail=f"{kept!r} mounted={is_mounted(data)}")
        engine.out("stop", "-t", "0", ids[1])
    finally:
        engine.out("rm", "-f", *ids)
        engine.cli("volume", "rm", "shared")


def test_a_monitor_killed_between_mount_and_release_leaves_no_mount(engine: Engine) -> None:
    """The state a restart's monitor SIGKILLed right after its mount leaves (a window too narrow for
    a timed kill, made directly): `_data` mounted, the users file naming a dead monitor, the record
    exited. The next reconciling command unmounts it."""
    engine.out("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "kv")
    cid = engine.out("create", "--network", "none", "-v", "kv:/k", "busybox", "true").strip()
    engine.out("start", "-a", cid)
    volume = get_volume(engine.config, "kv")
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        for case, users in (("killed-after-mount", {cid: f"{dead.pid} 1"}), ("killed-before-users-file", {})):
            volumes.mount_volume(volume)
            users_dir = volume.mountpoint.parent / "users"
            users_dir.mkdir(exist_ok=True)
            for name, text in users.items():
                (users_dir / name).write_text(text)
            result = engine.cli("ps", "-a")
            score("volume", case, result.returncode == 0, detail=result.stderr.decode()[-200:],
                  leaks=["_data still mounted with no live user"] if is_mounted(volume.mountpoint) else [],
                  escapes=stderr_escapes(result.stderr))
        again = engine.cli("start", "-a", cid)  # and the volume works again afterwards
        score("volume", "usable-after-a-killed-monitor", again.returncode == 0 and not is_mounted(volume.mountpoint),
              detail=again.stderr.decode()[-200:])
    finally:
        if is_mounted(volume.mountpoint):
            volumes.unmount_path(volume.mountpoint)
        engine.out("rm", "-f", cid)
        engine.out("volume", "rm", "kv")


def test_volume_rm_racing_starts_of_a_bound_host_directory(engine: Engine, tmp_path: Path) -> None:
    source = tmp_path / "host"
    source.mkdir()
    (source / "keep").write_text("host file\n")
    (source / "sub").mkdir()
    (source / "sub" / "deep").write_text("deep\n")
    before = _listing(source)
    engine.out("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={source}", "bound")
    cid = engine.out("create", "--network", "none", "-v", "bound:/b", "busybox", "cat", "/b/keep").strip()
    try:
        results = []
        for _ in range(3):
            results += _at_once(engine, ("start", "-a", cid), ("volume", "rm", "bound"), ("volume", "rm", "-f", "bound"))
        refused = [r for r in results if r.args[-2:] in (["rm", "bound"], ["-f", "bound"])]
        score("volume", "rm-racing-start-refused-in-use",
              all(r.returncode == 1 and one_line_error(r.stderr) and b"in use" in r.stderr for r in refused),
              detail=str([r.stderr[-120:] for r in refused if r.returncode != 1][:2]),
              escapes=[e for r in results for e in stderr_escapes(r.stderr)]
              + (["host directory changed"] if _listing(source) != before else []))
        engine.out("rm", "-v", cid)  # -v never removes a named volume
        removed = engine.cli("volume", "rm", "bound")
        score("volume", "rm-after-last-user-keeps-host-files",
              removed.returncode == 0 and not (engine.config.volumes_dir / "bound").exists(),
              detail=removed.stderr.decode(), escapes=["host directory changed"] if _listing(source) != before else [])
    finally:
        engine.cli("rm", "-f", cid)
        engine.cli("volume", "rm", "-f", "bound")


def test_no_removal_deletes_through_a_mount_below_data(engine: Engine, tmp_path: Path) -> None:
    """A mount below `_data` (one a privileged container's `rshared` bind propagated to the host, made
    here directly): `volume rm` and `volume prune` refuse in one line and delete nothing of it."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "precious").write_text("host file\n")
    engine.out("volume", "create", "plain")
    inner = _data(engine, "plain") / "sub"
    inner.mkdir()
    subprocess.run(["mount", "--bind", str(host), str(inner)], check=True)
    try:
        for case, verb in (("rm-through-mount", ("volume", "rm", "plain")),
                           ("prune-through-mount", ("volume", "prune", "-a", "-f"))):
            result = engine.cli(*verb)
            refused = result.returncode == 1 and one_line_error(result.stderr) if case.startswith("rm") else True
            score("volume", case, refused and (host / "precious").exists(), detail=result.stderr.decode()[-200:],
                  escapes=stderr_escapes(result.stderr)
                  + ([] if (host / "precious").exists() else ["deleted a host file through a mount"]))
    finally:
        subprocess.run(["umount", "-l", str(inner)], check=False)
        engine.cli("volume", "rm", "-f", "plain")
    assert (host / "precious").read_text() == "host file\n"


def test_data_swapped_for_a_link_to_a_host_directory(engine: Engine, tmp_path: Path) -> None:
    """`_data` replaced by a link to a host directory: mount(2) would follow it and mount the tmpfs
    over the host's directory. The start is refused in one line and the host directory is untouched."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "f").write_text("host\n")
    engine.out("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "swapped")
    data = _data(engine, "swapped")
    os.rmdir(data)
    os.symlink(host, data)
    try:
        result = engine.cli("run", "--rm", "--network", "none", "-v", "swapped:/s", "busybox", "ls", "/s")
        covered = is_mounted(host)
        score("volume", "data-swapped-for-a-link", result.returncode == 125 and one_line_error(result.stderr),
              detail=f"{result.returncode} {result.stderr.decode()[-200:]}",
              escapes=stderr_escapes(result.stderr) + (["tmpfs mounted over a host directory"] if covered else []))
    finally:
        if is_mounted(host):
            subprocess.run(["umount", "-l", str(host)], check=False)
        os.unlink(data)
        os.mkdir(data)
        engine.cli("volume", "rm", "-f", "swapped")
    assert (host / "f").read_text() == "host\n"
    assert wait_until(lambda: not is_mounted(host), timeout=2)


def test_a_relative_device_resolves_from_the_root_not_the_clients_directory(engine: Engine, tmp_path: Path) -> None:
    """`device=rel` with `o=bind` (Compose users write relative paths): dockerd resolves it from its
    own directory, `/`; the client's working directory (which may hold a decoy `rel`) is never used."""
    target = tmp_path / "target"
    target.mkdir()
    (target / "f").write_text("root-relative\n")
    decoy = tmp_path / "client" / os.path.relpath(target, "/")
    decoy.mkdir(parents=True)
    (decoy / "f").write_text("decoy\n")
    engine.out("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={os.path.relpath(target, '/')}", "rel")
    try:
        result = subprocess.run(engine.argv("run", "--rm", "--network", "none", "-v", "rel:/r", "busybox", "cat", "/r/f"),
                                capture_output=True, env=engine.env, cwd=tmp_path / "client", timeout=60)
        score("volume", "relative-device-from-root", result.stdout == b"root-relative\n",
              detail=f"{result.returncode} {result.stdout!r} {result.stderr[-160:]!r}",
              escapes=["bound the client's directory"] if b"decoy" in result.stdout else [])
    finally:
        engine.cli("volume", "rm", "-f", "rel")


def test_rm_v_of_a_running_user_of_an_anonymous_bound_directory(engine: Engine, tmp_path: Path) -> None:
    """`--mount type=volume,volume-opt=...` makes an anonymous volume binding a host directory; `rm -f
    -v` of its running container races the monitor's release with the removal's own unmount and
    delete. The directory keeps every file, the volume goes, nothing stays mounted."""
    source = tmp_path / "host"
    (source / "sub").mkdir(parents=True)
    (source / "keep").write_text("host file\n")
    (source / "sub" / "deep").write_text("deep\n")
    before = _listing(source)
    spec = f"type=volume,dst=/b,volume-opt=type=none,volume-opt=o=bind,volume-opt=device={source}"
    for round_ in range(3):
        cid = engine.out("run", "-d", "--network", "none", "--mount", spec, "busybox", "sleep", "60").strip()
        name = engine.inspect(cid)["Mounts"][0]["Name"]
        removed = engine.cli("rm", "-f", "-v", cid)
        volume_dir = engine.config.volumes_dir / name
        score("volume", f"rm-f-v-bound-anonymous-{round_}", removed.returncode == 0 and not volume_dir.exists(),
              detail=f"{removed.stderr[-160:]!r} volume dir left: {volume_dir.exists()}",
              leaks=[f"mounted: {p}" for p in volumes.mounts_under(engine.config.volumes_dir)],
              escapes=stderr_escapes(removed.stderr) + (["host directory changed"] if _listing(source) != before else []))
