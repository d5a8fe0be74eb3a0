"""Where a PutWebTracking request goes (docs/protocol.md): ``{scheme}://{project}.{endpoint}/logstores/
{logstore}/track``, https by default; for an IP address or localhost, connect to the endpoint itself
and send ``Host: {project}.{endpoint}`` (port included)."""

from __future__ import annotations

import json

import pytest
import requests

from sls_provider.core.endpoint import resolve_target
from sls_provider.core.errors import SlsConfigError
from sls_provider.emulator import SlsEmulator
from sls_provider.testing import EmulatorFactory


@pytest.mark.parametrize(
    ("endpoint", "port", "url", "host_header"),
    [
        (
            "cn-hangzhou.log.aliyuncs.com",
            None,
            "https://my-project.cn-hangzhou.log.aliyuncs.com/logstores/web-log/track",
            None,
        ),
        (
            "https://cn-hangzhou.log.aliyuncs.com",
            None,
            "https://my-project.cn-hangzhou.log.aliyuncs.com/logstores/web-log/track",
            None,
        ),
        (
            "http://cn-shanghai-intranet.log.aliyuncs.com/",
            None,
            "http://my-project.cn-shanghai-intranet.log.aliyuncs.com/logstores/web-log/track",
            None,
        ),
        ("  sls.example.com  ", None, "https://my-project.sls.example.com/logstores/web-log/track", None),
        (
            "sls.example.com:8443",
            None,
            "https://my-project.sls.example.com:8443/logstores/web-log/track",
            None,
        ),
        ("sls.example.com", 8443, "https://my-project.sls.example.com:8443/logstores/web-log/track", None),
        ("SLS.Example.COM", None, "https://my-project.sls.example.com/logstores/web-log/track", None),
        (
            "http://127.0.0.1:9090",
            None,
            "http://127.0.0.1:9090/logstores/web-log/track",
            "my-project.127.0.0.1:9090",
        ),
        ("127.0.0.1", 9090, "https://127.0.0.1:9090/logstores/web-log/track", "my-project.127.0.0.1:9090"),
        ("10.0.0.5", None, "https://10.0.0.5/logstores/web-log/track", "my-project.10.0.0.5"),
        (
            "http://localhost:8080",
            None,
            "http://localhost:8080/logstores/web-log/track",
            "my-project.localhost:8080",
        ),
        ("http://localhost", None, "http://localhost/logstores/web-log/track", "my-project.localhost"),
        ("http://[::1]:9090", None, "http://[::1]:9090/logstores/web-log/track", "my-project.[::1]:9090"),
    ],
)
def test_urls_and_host_headers(endpoint: str, port: int | None, url: str, host_header: str | None) -> None:
    target = resolve_target(endpoint, "my-project", "web-log", port=port)
    assert target.track_url == url
    assert target.host_header == host_header
    assert target.project == "my-project"
    assert target.logstore == "web-log"


def test_base_url_and_namespace() -> None:
    cloud = resolve_target("cn-hangzhou.log.aliyuncs.com", "proj", "store")
    assert cloud.scheme == "https"
    assert cloud.base_url == "https://proj.cn-hangzhou.log.aliyuncs.com"
    assert cloud.namespace == "sls://proj.cn-hangzhou.log.aliyuncs.com"
    local = resolve_target("http://127.0.0.1:9090", "proj", "store")
    assert local.base_url == "http://127.0.0.1:9090"
    assert local.namespace == "sls://proj.127.0.0.1:9090"


def test_same_port_in_url_and_argument_is_fine() -> None:
    target = resolve_target("http://127.0.0.1:9090", "proj", "store", port=9090)
    assert target.netloc == "127.0.0.1:9090"


@pytest.mark.parametrize(
    ("endpoint", "port", "fragment"),
    [
        ("", None, "no endpoint"),
        ("   ", None, "no endpoint"),
        ("ftp://sls.example.com", None, "http or https"),
        ("https://user:secret@sls.example.com", None, "credentials"),
        ("https://sls.example.com/logstores/x", None, "without a path"),
        ("https://sls.example.com?x=1", None, "without a path"),
        ("https://sls.example.com:99999", None, "port"),
        ("https://sls.example.com:abc", None, "port"),
        ("https://:8080", None, "no host"),
        ("sls.example.com:80", 81, "port"),
        ("sls.example.com", 0, "port"),
        ("sls.example.com", 70000, "port"),
    ],
)
def test_bad_endpoints_are_config_errors(endpoint: str, port: int | None, fragment: str) -> None:
    with pytest.raises(SlsConfigError, match=fragment):
        resolve_target(endpoint, "proj", "store", port=port)


def test_credentials_are_not_echoed() -> None:
    with pytest.raises(SlsConfigError) as info:
        resolve_target("https://user:secret@sls.example.com", "proj", "store")
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("project", ["abc", "my-project-1", "0proj", "a" * 63])
def test_good_projects(project: str) -> None:
    assert resolve_target("sls.example.com", project, "store").netloc == f"{project}.sls.example.com"


@pytest.mark.parametrize(
    "project", ["", "ab", "My-Project", "-abc", "abc-", "a_b_c", "a.b", "proj ect", "项目", "a" * 129]
)
def test_bad_projects(project: str) -> None:
    with pytest.raises(SlsConfigError, match="project") as info:
        resolve_target("sls.example.com", project, "store")
    assert repr(project) in str(info.value)


@pytest.mark.parametrize("logstore", ["abc", "web_log", "web-log-2", "0store", "a" * 63])
def test_good_logstores(logstore: str) -> None:
    assert resolve_target("sls.example.com", "proj", logstore).track_url.endswith(
        f"/logstores/{logstore}/track"
    )


@pytest.mark.parametrize(
    "logstore", ["", "ab", "Web", "_abc", "abc_", "-abc", "a/b", "a b", "a%2fb", "日志", "a" * 129]
)
def test_bad_logstores(logstore: str) -> None:
    with pytest.raises(SlsConfigError, match="logstore") as info:
        resolve_target("sls.example.com", "proj", logstore)
    assert repr(logstore) in str(info.value)


@pytest.mark.parametrize(
    ("endpoint", "netloc", "host_header"),
    [
        # Only an IP address or localhost itself is connected to directly, whatever its spelling.
        ("http://LOCALHOST:8080/", "localhost:8080", "my-project.localhost:8080"),
        ("https://[2001:db8::1]:443", "[2001:db8::1]:443", "my-project.[2001:db8::1]:443"),
        ("http://[::ffff:127.0.0.1]", "[::ffff:127.0.0.1]", "my-project.[::ffff:127.0.0.1]"),
        # Names that merely contain an IP or "localhost" resolve: the project goes in the host name.
        ("127.0.0.1.nip.io", "my-project.127.0.0.1.nip.io", None),
        ("localhost.localdomain", "my-project.localhost.localdomain", None),
    ],
)
def test_only_literal_hosts_are_connected_to_directly(
    endpoint: str, netloc: str, host_header: str | None
) -> None:
    target = resolve_target(endpoint, "my-project", "web-log")
    assert (target.netloc, target.host_header) == (netloc, host_header)
    assert target.track_url == f"{target.scheme}://{netloc}/logstores/web-log/track"
    # The lineage namespace names the project's host either way, never the bare IP.
    assert target.namespace == f"sls://{host_header or netloc}"
    assert target.namespace.startswith("sls://my-project.")


@pytest.fixture
def emu(sls_emulator_factory: EmulatorFactory) -> SlsEmulator:
    return sls_emulator_factory(logstores=[("proj-a", "store_1"), ("proj-b", "store_1")])


def test_a_resolved_local_target_reaches_the_right_project(emu: SlsEmulator) -> None:
    """The Host header carries the project: the emulator routes on it, like the service."""
    body = json.dumps({"__topic__": "", "__source__": "t", "__tags__": {}, "__logs__": [{"k": "v"}]}).encode()
    for project in ("proj-a", "proj-b", "proj-b"):
        target = resolve_target(emu.endpoint, project, "store_1")
        assert target.netloc == f"127.0.0.1:{emu.port}"
        response = requests.post(
            target.track_url,
            data=body,
            headers={"Host": target.host_header, "x-log-apiversion": "0.6.0"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    assert emu.count("proj-a", "store_1") == 1
    assert emu.count("proj-b", "store_1") == 2
