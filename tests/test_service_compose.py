"""What docker-compose 1.29's own test suite (contrib/compose_suite.py) found the service doing
differently from Docker, each case driven by a real client on the real socket: docker-py at the API
version Compose 1.29 pins (1.38, its COMPOSE_SPEC floor), or the docker-compose command itself."""

from __future__ import annotations

import pytest

from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - the `engine` fixture

pytestmark = pytest.mark.root

COMPOSE_API = "1.38"  # compose.const.API_VERSIONS[COMPOSE_SPEC]: every integration client of Compose 1.29


def _compose_client(service: Service):  # noqa: ANN202 - docker.APIClient, imported lazily
    import docker

    return docker.APIClient(base_url=service.host, version=COMPOSE_API, timeout=60)


def test_compose_api_version_is_served_and_the_floor_is_dockers(service: Service) -> None:
    """Docker 25+ serves 1.24 and up (Docker 24 even 1.12): Compose 1.29's 1.38 client works."""
    client = _compose_client(service)
    try:
        assert client.version()["MinAPIVersion"] == "1.24"
        cid = client.create_container("busybox", ["true"], labels={"com.docker.compose.project": "x"})["Id"]
        listed = client.containers(all=True, filters={"label": "com.docker.compose.project=x"})
        assert [c["Id"] for c in listed] == [cid]
        client.remove_container(cid)
    finally:
        client.close()
    old = service.request("GET", "/v1.23/containers/json")
    assert old.status == 400
    assert old.json()["message"] == ("client version 1.23 is too old. Minimum supported API version is 1.24, "
                                     "please upgrade your client to a newer version")


def test_attach_to_a_stopped_container_waits_for_its_next_start(service: Service) -> None:
    """compose's `up` (scale, no-recreate, restarting stopped containers) attaches and then starts,
    as `docker start -a` does: moby's attach to a stopped container waits for its next run (its
    streams outlive a run); dockui refused it ("You cannot attach to a stopped container")."""
    client = _compose_client(service)
    try:
        cid = client.create_container("busybox", ["sh", "-c", "echo run"], labels={"t": "attach"})["Id"]
        client.start(cid)
        assert client.wait(cid, timeout=30)["StatusCode"] == 0
        stream = client.attach(cid, stdout=True, stderr=True, stream=True, logs=False)
        client.start(cid)
        assert b"".join(stream) == b"run\n"  # the new run only, not the first run's log
        assert client.wait(cid, timeout=30)["StatusCode"] == 0
        again = service.docker("start", "-a", cid, timeout=30)
        assert (again.returncode, again.stdout) == (0, b"run\n"), again.stderr
        client.remove_container(cid)
    finally:
        client.close()


def test_network_aliases_are_any_name_as_dockers(service: Service) -> None:
    """Compose gives every container its service name as an alias, and a service may be named
    `--test-service` (its fixture flag-as-service-name): moby checks no alias's characters. Only an
    alias with whitespace or a control character (no DNS name holds one) is refused, in one line."""
    client = _compose_client(service)
    net = client.create_network("composealias", driver="bridge")["Id"]
    cid = ""
    try:
        config = client.create_networking_config({"composealias": client.create_endpoint_config(
            aliases=["_under.score"])})
        cid = client.create_container("busybox", ["sleep", "30"], networking_config=config,
                                      host_config=client.create_host_config(network_mode="composealias"))["Id"]
        # compose's create: disconnect, then connect again with the service name as an alias
        client.disconnect_container_from_network(cid, net)
        client.connect_container_to_network(cid, net, aliases=["--test-service", "_under.score"])
        client.start(cid)
        shown = client.inspect_container(cid)["NetworkSettings"]["Networks"]["composealias"]["Aliases"]
        assert {"--test-service", "_under.score"} <= set(shown)
        bad = service.request("POST", f"/v1.38/networks/{net}/connect",
                              {"Container": cid, "EndpointConfig": {"Aliases": ["two words"]}})
        assert bad.status == 400 and "invalid alias" in bad.json()["message"]
    finally:
        if cid:
            client.remove_container(cid, force=True)
        client.remove_network(net)
        client.close()


def test_port_bindings_are_shown_as_asked(service: Service) -> None:
    """HostConfig.PortBindings as Docker keeps them (compose's scale test reads them back): each
    container port with its host bindings, HostPort "" for any free port; dockui showed {}."""
    client = _compose_client(service)
    try:
        host_config = client.create_host_config(port_bindings={8000: None, "53/udp": ("127.0.0.1", 5353)})
        cid = client.create_container("busybox", ["true"], ports=[8000, (53, "udp")], host_config=host_config)["Id"]
        shown = client.inspect_container(cid)["HostConfig"]["PortBindings"]
        assert shown == {"8000/tcp": [{"HostIp": "", "HostPort": ""}],
                         "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}
        client.remove_container(cid)
    finally:
        client.close()


def test_userns_mode_host_is_shown_as_given(service: Service) -> None:
    """`userns_mode: host` (dockui's only mode: no user-namespace remapping) is accepted, and
    inspect shows it as Docker does; dockui showed ""."""
    client = _compose_client(service)
    try:
        given = client.create_container("busybox", ["true"], host_config=client.create_host_config(userns_mode="host"))
        plain = client.create_container("busybox", ["true"])
        assert client.inspect_container(given["Id"])["HostConfig"]["UsernsMode"] == "host"
        assert client.inspect_container(plain["Id"])["HostConfig"]["UsernsMode"] == ""
        for c in (given, plain):
            client.remove_container(c["Id"])
    finally:
        client.close()


def test_anonymous_volumes_are_in_config_volumes_and_committed(service: Service) -> None:
    """A create's Config.Volumes ({"/data": {}}) is the container's Config.Volumes, merged with the
    image's, as moby's merge: a commit keeps it, and a container of that image shows it (compose's
    trailing-slash test builds its image so); dockui kept the image's only."""
    client = _compose_client(service)
    ids: list[str] = []
    image = ""
    try:
        ids.append(client.create_container("busybox", "true", volumes=["/data"])["Id"])
        assert client.inspect_container(ids[0])["Config"]["Volumes"] == {"/data": {}}
        image = client.commit(ids[0])["Id"]
        ids.append(client.create_container(image, "true", volumes=["/more"])["Id"])
        assert client.inspect_container(ids[1])["Config"]["Volumes"] == {"/data": {}, "/more": {}}
    finally:
        for cid in ids:
            client.remove_container(cid, v=True)
        if image:
            client.remove_image(image)
        client.close()


def test_a_connect_before_the_first_start_keeps_its_links_and_link_local_ips(service: Service) -> None:
    """compose's create: the container is created on its network, then disconnected and connected
    again (aliases, links, link_local_ips) before its first start; once it runs, inspect shows the
    endpoint's Links and IPAMConfig.LinkLocalIPs, the interface holds the address and the link's
    alias resolves. dockui kept the links as legacy HostConfig.Links and dropped the addresses."""
    client = _compose_client(service)
    net = client.create_network("composell", driver="bridge")["Id"]
    cid = db = ""
    try:
        db = client.create_container("busybox", ["sleep", "30"], name="composell_db",
                                     host_config=client.create_host_config(network_mode="composell"))["Id"]
        client.start(db)
        config = client.create_networking_config({"composell": client.create_endpoint_config(aliases=["web"])})
        cid = client.create_container("busybox", ["sleep", "30"], networking_config=config,
                                      host_config=client.create_host_config(network_mode="composell"))["Id"]
        client.disconnect_container_from_network(cid, net)
        client.connect_container_to_network(cid, net, aliases=["web", cid[:12]], links=[("composell_db", "database")],
                                            link_local_ips=["169.254.8.8"])
        client.start(cid)
        inspected = client.inspect_container(cid)
        endpoint = inspected["NetworkSettings"]["Networks"]["composell"]
        assert endpoint["Links"] == ["composell_db:database"] and inspected["HostConfig"]["Links"] is None
        assert endpoint["IPAMConfig"] is not None and endpoint["IPAMConfig"].get("LinkLocalIPs") == ["169.254.8.8"]
        shown = client.exec_start(client.exec_create(cid, ["ip", "-4", "addr"])["Id"])
        assert b"169.254.8.8" in shown
        resolved = client.exec_start(client.exec_create(cid, ["nslookup", "database"])["Id"])
        db_ip = client.inspect_container(db)["NetworkSettings"]["Networks"]["composell"]["IPAddress"]
        assert db_ip and db_ip.encode() in resolved
    finally:
        for container in (cid, db):
            if container:
                client.remove_container(container, force=True)
        client.remove_network(net)
        client.close()


def test_commit_takes_a_config_body_as_docker(service: Service) -> None:
    """docker-py's `commit(conf=...)` posts a container Config: moby makes it the image's config,
    the container's filling what it leaves empty, `changes` on top. dockui refused any body."""
    client = _compose_client(service)
    cid = client.create_container("busybox", ["sh", "-c", "echo hi > /made"], environment=["FROM_RUN=1"])["Id"]
    run = image = ""
    try:
        client.start(cid)
        assert client.wait(cid, timeout=30)["StatusCode"] == 0
        image = client.commit(cid, "committed", "conf", conf={"Cmd": ["cat", "/made"], "Labels": {"a": "b"},
                                                             "Env": ["FROM_BODY=2"], "Hostname": "ignored"},
                              changes=["LABEL c=d"])["Id"]
        config = client.inspect_image("committed:conf")["Config"]
        assert config["Cmd"] == ["cat", "/made"] and config["Labels"] == {"a": "b", "c": "d"}
        assert {"FROM_RUN=1", "FROM_BODY=2"} <= set(config["Env"])
        run = client.create_container("committed:conf")["Id"]
        client.start(run)
        assert client.wait(run, timeout=30)["StatusCode"] == 0 and client.logs(run) == b"hi\n"
        refused = service.request("POST", f"/v1.38/commit?container={cid}", {"Healthcheck": {"Test": ["NONE"]}})
        assert refused.status == 400 and refused.json()["message"] == "commit: Config.Healthcheck is not supported by dockui"
    finally:
        for container in (run, cid):
            if container:
                client.remove_container(container)
        if image:
            client.remove_image(image)
        client.close()


def test_info_lists_the_runtime_inspect_names(service: Service) -> None:
    """Inspect names a container's runtime "runc" (what Docker's clients expect; create accepts
    "runc" and "dockui", the one runtime dockui has), so info's Runtimes lists it and names it the
    default, as compose's runtime test checks before it runs (dockui's info listed "dockui" only)."""
    client = _compose_client(service)
    try:
        info = client.info()
        plain = client.create_container("busybox", ["true"])["Id"]
        asked = client.create_container("busybox", ["true"], host_config=client.create_host_config(runtime="runc"))["Id"]
        assert client.inspect_container(plain)["HostConfig"]["Runtime"] == info["DefaultRuntime"] == "runc"
        assert client.inspect_container(asked)["HostConfig"]["Runtime"] == "runc"
        assert {"runc", "dockui"} <= set(info["Runtimes"])
        for cid in (plain, asked):
            client.remove_container(cid)
    finally:
        client.close()


def test_a_volume_driver_no_plugin_provides_is_not_found(service: Service) -> None:
    """Docker answers a volume driver it has no plugin for with 404 (its plugin lookup's NotFound),
    which compose turns into "Volume ... specifies nonexistent driver"; dockui answered 400."""
    import docker

    client = _compose_client(service)
    try:
        with pytest.raises(docker.errors.NotFound) as missing:
            client.create_volume("composetest_vol", driver="foobar")
        assert 'create composetest_vol: error looking up volume plugin foobar: plugin "foobar" not found' in str(missing.value)
        assert not (client.volumes().get("Volumes") or [])
    finally:
        client.close()


def test_a_healthcheck_of_an_unknown_kind_is_kept_and_probes_nothing(service: Service) -> None:
    """moby's create checks a healthcheck's durations and retries, not the kind of its test: a Test
    of ["true"] (compose's test writes one) is kept as given and its monitor runs no probe (moby's
    getProbe: "Unknown healthcheck type"). dockui refused the create."""
    client = _compose_client(service)
    try:
        check = {"Test": ["true"], "Interval": 2_000_000_000, "Timeout": 5_000_000_000, "Retries": 5,
                 "StartPeriod": 2_000_000_000}
        cid = client.create_container("busybox", ["sleep", "30"], healthcheck=check)["Id"]
        assert client.inspect_container(cid)["Config"]["Healthcheck"] == check
        client.start(cid)
        assert client.inspect_container(cid)["State"]["Running"]
        client.remove_container(cid, force=True)
        refused = service.request("POST", "/v1.38/containers/create",
                                  {"Image": "busybox", "Healthcheck": {"Test": ["true"], "Retries": -1}})
        assert refused.status == 400 and "Retries in Healthcheck cannot be negative" in refused.json()["message"]
    finally:
        client.close()


def test_an_ipv6_network_with_a_link_local_gateway_routes_through_it(service: Service) -> None:
    """compose's enable_ipv6 test: a network on fe80::/64 whose gateway is fe80::1001:1. A route via
    a link-local gateway must name its device; the start failed with "network set-up failed:
    [Errno 22] Invalid argument". The container gets its address and its default route via eth0."""
    import docker

    client = _compose_client(service)
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="fe80::/64", gateway="fe80::1001:1")])
    net = client.create_network("composev6", driver="bridge", enable_ipv6=True, ipam=ipam)["Id"]
    cid = ""
    try:
        config = client.create_networking_config({"composev6": client.create_endpoint_config(
            ipv6_address="fe80::1001:102")})
        cid = client.create_container("busybox", ["sleep", "30"], networking_config=config,
                                      host_config=client.create_host_config(network_mode="composev6"))["Id"]
        client.start(cid)
        endpoint = client.inspect_container(cid)["NetworkSettings"]["Networks"]["composev6"]
        assert endpoint["GlobalIPv6Address"] == "fe80::1001:102" and endpoint["IPAMConfig"]["IPv6Address"] == "fe80::1001:102"
        routes = client.exec_start(client.exec_create(cid, ["ip", "-6", "route", "show", "default"])["Id"])
        assert b"default via fe80::1001:1 dev eth0" in routes
        routes4 = client.exec_start(client.exec_create(cid, ["ip", "-4", "route", "show", "default"])["Id"])
        assert b"dev eth0" in routes4  # the IPv4 default route names its device too
    finally:
        if cid:
            client.remove_container(cid, force=True)
        client.remove_network(net)
        client.close()


def test_an_attach_waiting_for_a_start_ends_when_the_container_is_removed(service: Service) -> None:
    """An attach to a stopped container waits for its next start; moby ends it when the container
    is removed (its streams close), so compose's log printer does not hang after `down`."""
    import threading

    client = _compose_client(service)
    try:
        cid = client.create_container("busybox", ["true"])["Id"]
        client.start(cid)
        assert client.wait(cid, timeout=30)["StatusCode"] == 0
        stream = client.attach(cid, stdout=True, stderr=True, stream=True, logs=False)
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(b"".join(stream)), daemon=True)
        reader.start()
        client.remove_container(cid)
        reader.join(timeout=10)
        assert not reader.is_alive(), "the attach went on after the container was removed"
        assert received == [b""]
    finally:
        client.close()
