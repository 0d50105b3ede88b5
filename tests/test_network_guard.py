import socket

import pytest

from tests.httpfake import FakeServer, Response


def test_non_loopback_lookup_is_blocked() -> None:
    with pytest.raises(OSError, match="network access blocked"):
        socket.getaddrinfo("gmail.googleapis.com", 443)


def test_fake_server_serves_routes_and_queued_faults() -> None:
    import urllib.error
    import urllib.request

    with FakeServer() as srv:
        srv.route("GET", r"/ping", lambda req: Response(200, {"pong": True}))
        srv.fail(r"/ping", Response(503, {"error": "down"}, {"Retry-After": "1"}))
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(srv.url + "/ping", timeout=5)
        assert err.value.code == 503 and err.value.headers["Retry-After"] == "1"
        with urllib.request.urlopen(srv.url + "/ping", timeout=5) as resp:
            assert resp.read() == b'{"pong": true}'
        assert [r.path for r in srv.requests("/ping")] == ["/ping", "/ping"]
