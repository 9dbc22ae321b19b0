"""Legacy link removal through the Engine API service: `docker rm --link /web/db` (the docker CLI)
and docker-py's `remove_container("web/db", link=True)`, both `DELETE /containers/web/db?link=1`.

As moby's rmLink: the link named `<linking container>/<alias>` goes from the linking container
(HostConfig.Links, NetworkSettings.Links, its /etc/hosts line while it runs, and at its next start
the variables too); both containers stay as they are. A name that is no link is moby's 404, a
container's own name moby's "default link name" conflict.
"""

from __future__ import annotations

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root


def test_rm_link_removes_the_link_and_leaves_both_containers(service: Service) -> None:
    service.docker_out("run", "-d", "--name", "db", "busybox", "sleep", "300")
    service.docker_out("run", "-d", "--name", "cache", "--hostname", "cachehost", "busybox", "sleep", "300")
    service.docker_out("run", "-d", "--name", "web", "--link", "db:dbalias", "--link", "cache", "busybox", "sleep", "300")
    try:
        hosts = service.docker_out("exec", "web", "cat", "/etc/hosts")
        assert "\tdbalias " in hosts and "\tcache cachehost" in hosts

        removed = service.docker("rm", "--link", "/web/dbalias")
        assert removed.returncode == 0, removed.stderr
        assert removed.stdout.decode().strip() == "/web/dbalias"  # the CLI prints the name it removed
        hosts = service.docker_out("exec", "web", "cat", "/etc/hosts")
        assert "dbalias" not in hosts and "\tcache cachehost" in hosts  # rewritten in place, the other link kept
        links = service.docker_out("inspect", "-f", "{{json .HostConfig.Links}}", "web").strip()
        assert "dbalias" not in links and "cache" in links
        settings = service.docker_out("inspect", "-f", "{{json .NetworkSettings.Links}}", "web").strip()
        assert "dbalias" not in settings and "cache" in settings
        running = service.docker_out("ps", "--format", "{{.Names}}").split()
        assert {"db", "cache", "web"} <= set(running)  # both ends of the link stay, running

        # The same link again, a container's own name, an unknown container: moby's answers, nothing changed.
        again = service.docker("rm", "--link", "/web/dbalias")
        assert again.returncode == 1 and b"No such container: web/dbalias" in again.stderr
        own = service.docker("rm", "--link", "web")
        assert own.returncode == 1 and b"cannot remove the default link name of the container" in own.stderr
        nowhere = service.docker("rm", "--link", "/nosuch/db")
        assert nowhere.returncode == 1 and b"No such container: nosuch/db" in nowhere.stderr

        client = service.client()
        try:
            client.api.remove_container("web/cache", link=True)  # docker-py's spelling of the same request
        finally:
            client.close()
        assert service.docker_out("inspect", "-f", "{{json .HostConfig.Links}}", "web").strip() == "null"
        # The next start resolves no link: no variables, no hosts lines.
        service.docker_out("restart", "-t", "0", "web")
        env = service.docker_out("exec", "web", "env")
        assert "DBALIAS_" not in env and "CACHE_" not in env
        hosts = service.docker_out("exec", "web", "cat", "/etc/hosts")
        assert "dbalias" not in hosts and "cache" not in hosts
    finally:
        service.docker("rm", "-f", "web", "cache", "db")
