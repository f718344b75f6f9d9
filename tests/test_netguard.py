"""SSRF guard for webhook targets (dossiers/netguard.py): a table of URLs against a fake
resolver (no real DNS), then the pinned transport against real loopback servers."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dossiers import netguard
from dossiers.errors import WebhookTargetRefused as TargetRefused
from dossiers.errors import WebhookTargetUnresolvable as TargetUnresolvable
from dossiers.netguard import PinnedTransport, check_url, pinned_client

DNS: dict[str, list[str]] = {
    "public.example.com": ["93.184.216.34"],
    "public6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
    "dual.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "repeat.example.com": ["93.184.216.34", "93.184.216.34"],
    "localhost": ["127.0.0.1", "::1"],
    "loop.example.com": ["127.0.0.53"],
    "intranet.example.com": ["10.1.2.3"],
    "ten.example.com": ["10.9.9.9"],
    "corp.example.com": ["172.16.5.4"],
    "home.example.com": ["192.168.1.10"],
    "metadata.example.com": ["169.254.169.254"],
    "cgnat.example.com": ["100.64.1.1"],
    "alibaba-metadata.example.com": ["100.100.100.200"],
    "ula.example.com": ["fd00:ec2::254"],
    "linklocal6.example.com": ["fe80::1"],
    "scoped6.example.com": ["fe80::1%eth0"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "mapped-private.example.com": ["::ffff:10.0.0.1"],
    "mapped-public.example.com": ["::ffff:93.184.216.34"],
    "nat64.example.com": ["64:ff9b::a9fe:a9fe"],
    "sixtofour.example.com": ["2002:7f00:1::1"],
    "zero.example.com": ["0.0.0.0"],
    "multicast.example.com": ["224.0.0.251"],
    "reserved.example.com": ["240.0.0.1"],
    "broadcast.example.com": ["255.255.255.255"],
    "testnet.example.com": ["192.0.2.7"],
    "mixed.example.com": ["93.184.216.34", "10.0.0.5"],
    "mixed6.example.com": ["2606:2800:220:1:248:1893:25c8:1946", "::1"],
    "hooks.example.test": ["127.0.0.1"],
}


def fake_resolve(host, port, family=0, type=0, proto=0, flags=0):
    """getaddrinfo's shape, answering from DNS; unknown names fail as a real lookup does."""
    try:
        addresses = DNS[host.rstrip(".")]
    except KeyError:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
    answers = []
    for address in addresses:
        if ":" in address:
            answers.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
        else:
            answers.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
    return answers


def no_dns(*args, **kwargs):
    raise AssertionError("an IP literal must not be resolved")


# --- the table -----------------------------------------------------------------------------

REFUSED = [
    ("http://localhost/hook", "loopback"),
    ("http://LOCALHOST./hook", "loopback"),
    ("http://loop.example.com/", "loopback"),
    ("http://127.0.0.1:8000/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://intranet.example.com/", "private"),
    ("http://corp.example.com/", "private"),
    ("http://home.example.com/", "private"),
    ("http://10.0.0.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://metadata.example.com/", "link-local"),
    ("http://cgnat.example.com/", "carrier-grade NAT"),
    ("http://alibaba-metadata.example.com/", "carrier-grade NAT"),
    ("http://100.127.255.255/", "carrier-grade NAT"),
    ("http://ula.example.com/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://[fc00::1]/", "private"),
    ("http://linklocal6.example.com/", "link-local"),
    ("http://scoped6.example.com/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://mapped.example.com/", "loopback"),
    ("http://mapped-private.example.com/", "private"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://nat64.example.com/", "wraps 169.254.169.254"),
    ("http://sixtofour.example.com/", "wraps 127.0.0.1"),
    ("http://[::127.0.0.1]/", "reserved"),
    ("http://[fec0::1]/", "site-local"),
    ("http://zero.example.com/", "unspecified"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://multicast.example.com/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://reserved.example.com/", "private"),
    ("http://broadcast.example.com/", "private"),
    ("http://testnet.example.com/", "private"),
    ("http://mixed.example.com/", "10.0.0.5"),
    ("http://mixed6.example.com/", "::1"),
    # Numeric host forms that inet_aton would read as loopback.
    ("http://2130706433/", "neither a DNS host name"),
    ("http://0x7f.1/", "neither a DNS host name"),
    ("http://127.1/", "neither a DNS host name"),
    ("http://0177.0.0.1/", "neither a DNS host name"),
    ("http://[fe80::1%25eth0]/", "neither a DNS host name"),
    # Shape.
    ("ftp://public.example.com/", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("gopher://public.example.com:70/", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
    ("public.example.com/hook", "only http and https"),
    ("//public.example.com/hook", "only http and https"),
    ("http:///hook", "no host"),
    ("http://user:pass@public.example.com/", "credentials"),
    ("http://user@public.example.com/", "credentials"),
    ("http://public.example.com@127.0.0.1/", "credentials"),
    ("http://public.example.com:0/", "port"),
    ("http://public.example.com:65536/", "port"),
    ("http://public.example.com:http/", "port"),
    ("http://public.example.com\\@127.0.0.1/", "backslashes"),
    ("http://public.example.com /", "whitespace"),
    ("http://public.example.com/\nHost: x", "control"),
    ("http://bücher.example/", "non-ASCII"),
    ("http://under score!.example.com/", "whitespace"),
    ("http://bad_host!.example.com/", "neither a DNS host name"),
    ("", "not a URL"),
]


@pytest.mark.parametrize("url,why", REFUSED, ids=[u or "<empty>" for u, _ in REFUSED])
def test_refused(url, why):
    with pytest.raises(TargetRefused) as info:
        check_url(url, resolve=fake_resolve)
    assert why in str(info.value)
    assert info.value.url == url


ALLOWED = [
    ("https://public.example.com/hook", ["93.184.216.34"]),
    ("HTTPS://Public.Example.COM:8443/hook?x=1#f", ["93.184.216.34"]),
    ("http://public6.example.com/", ["2606:2800:220:1:248:1893:25c8:1946"]),
    ("https://dual.example.com/", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]),
    ("https://repeat.example.com/", ["93.184.216.34"]),
    ("https://mapped-public.example.com/", ["93.184.216.34"]),
    ("http://8.8.8.8/", ["8.8.8.8"]),
    ("http://[2606:4700:4700::1111]:8080/", ["2606:4700:4700::1111"]),
    ("http://[::ffff:8.8.8.8]/", ["8.8.8.8"]),
    ("https://public.example.com.:443/", ["93.184.216.34"]),
]


@pytest.mark.parametrize("url,expected", ALLOWED, ids=[u for u, _ in ALLOWED])
def test_allowed(url, expected):
    assert check_url(url, resolve=fake_resolve) == expected


def test_ip_literals_are_not_resolved():
    assert check_url("http://8.8.8.8/", resolve=no_dns) == ["8.8.8.8"]
    with pytest.raises(TargetRefused):
        check_url("http://127.0.0.1/", resolve=no_dns)


def test_resolver_gets_host_and_effective_port():
    seen = []

    def spy(host, port, **kwargs):
        seen.append((host, port, kwargs.get("type")))
        return fake_resolve(host, port)

    check_url("https://public.example.com/", resolve=spy)
    check_url("http://public.example.com/", resolve=spy)
    check_url("http://public.example.com:8080/", resolve=spy)
    assert seen == [("public.example.com", 443, socket.SOCK_STREAM), ("public.example.com", 80, socket.SOCK_STREAM),
                    ("public.example.com", 8080, socket.SOCK_STREAM)]


def test_unresolvable_is_its_own_refusal():
    with pytest.raises(TargetUnresolvable, match="does not resolve"):
        check_url("https://nowhere.example.com/", resolve=fake_resolve)
    with pytest.raises(TargetUnresolvable, match="no address"):
        check_url("https://empty.example.com/", resolve=lambda *a, **k: [])
    assert issubclass(TargetUnresolvable, TargetRefused)


def test_resolver_returning_something_odd_is_refused():
    odd = [(socket.AF_UNIX, socket.SOCK_STREAM, 0, "", "/tmp/sock")]
    with pytest.raises(TargetRefused, match="not an IP address"):
        check_url("https://odd.example.com/", resolve=lambda *a, **k: odd)


# --- the allow-list --------------------------------------------------------------------------

@pytest.mark.parametrize("url,allow,expected", [
    ("http://localhost:8080/", ["localhost"], ["127.0.0.1", "::1"]),
    ("http://LocalHost./", ["LOCALHOST"], ["127.0.0.1", "::1"]),
    ("http://intranet.example.com/", ["intranet.example.com."], ["10.1.2.3"]),
    ("http://intranet.example.com/", ["10.0.0.0/8"], ["10.1.2.3"]),
    ("http://intranet.example.com/", ["10.1.2.3"], ["10.1.2.3"]),
    ("http://intranet.example.com/", ["10.1.2.3/32"], ["10.1.2.3"]),
    ("http://127.0.0.1:9000/", ["127.0.0.0/8"], ["127.0.0.1"]),
    ("http://[::1]:9000/", ["::1/128"], ["::1"]),
    ("http://[::1]:9000/", ["::1"], ["::1"]),
    ("http://mapped.example.com/", ["127.0.0.0/8"], ["127.0.0.1"]),
    ("http://localhost/", ["127.0.0.0/8", "::1/128"], ["127.0.0.1", "::1"]),
    ("http://mixed.example.com/", ["10.0.0.0/24"], ["93.184.216.34", "10.0.0.5"]),
    ("http://ula.example.com/", ["fd00::/8"], ["fd00:ec2::254"]),
    ("http://public.example.com/", [" 10.0.0.0/8 ", ""], ["93.184.216.34"]),
])
def test_allow_list_permits(url, allow, expected):
    assert check_url(url, allow, resolve=fake_resolve) == expected


@pytest.mark.parametrize("url,allow,why", [
    ("http://localhost/", ["127.0.0.0/8"], "::1"),                     # every address must pass
    ("http://intranet.example.com/", ["intranet"], "private"),        # host names match exactly
    ("http://intranet.example.com/", ["example.com"], "private"),     # no suffix matching
    ("http://ten.example.com/", ["intranet.example.com"], "private"),  # another host's entry
    ("http://ten.example.com/", ["10.1.2.0/24"], "private"),           # outside the range
    ("http://metadata.example.com/", ["10.0.0.0/8", "localhost"], "link-local"),
])
def test_allow_list_is_exact(url, allow, why):
    with pytest.raises(TargetRefused, match=why):
        check_url(url, allow, resolve=fake_resolve)


def test_allow_list_does_not_relax_the_url_shape():
    with pytest.raises(TargetRefused, match="credentials"):
        check_url("http://u:p@localhost/", ["localhost"], resolve=fake_resolve)
    with pytest.raises(TargetRefused, match="only http"):
        check_url("ftp://localhost/", ["localhost"], resolve=fake_resolve)


@pytest.mark.parametrize("entry", ["10.1.2.3/8", "10.0.0.0/33", "not a host", "::zz", "bad!name", "127.1"])
def test_malformed_allow_entries_are_errors(entry):
    with pytest.raises(ValueError, match="allow-list entry"):
        check_url("https://public.example.com/", [entry], resolve=fake_resolve)


def test_allow_must_be_a_list_not_a_string():
    with pytest.raises(TypeError):
        check_url("https://public.example.com/", "127.0.0.0/8", resolve=fake_resolve)


def test_refusal_message_names_the_setting():
    with pytest.raises(TargetRefused) as info:
        check_url("http://intranet.example.com/", resolve=fake_resolve)
    message = str(info.value)
    assert "intranet.example.com" in message and "10.1.2.3" in message
    assert "EXCHANGE_WEBHOOK_ALLOW_HOSTS" in message
    assert info.value.reason and info.value.code == "webhook-target-refused"


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.0.0.1", "172.31.255.255", "192.168.0.1", "169.254.0.1", "100.64.0.0", "0.0.0.0",
    "224.0.0.1", "240.0.0.1", "::1", "::", "fe80::1", "fc00::1", "fd00::1", "ff00::1", "::ffff:10.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b:1::1", "2002:a00:1::", "2001:db8::1",
])
def test_every_refused_address_class(address):
    assert netguard._refusal(netguard._as_ip(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
                                     "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_pass(address):
    assert netguard._refusal(netguard._as_ip(address)) is None


# --- the pinned transport against real loopback servers --------------------------------------

class _Recorder(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.seen.append({"path": self.path, "host": self.headers.get("Host")})
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"reached"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format, *args):
        pass


class _Server:
    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
        self.httpd.seen = []
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def seen(self) -> list[dict]:
        return self.httpd.seen

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[_Server]:
    with _Server() as srv:
        yield srv


def test_request_reaches_the_approved_address_under_the_original_name(server):
    url = f"http://hooks.example.test:{server.port}/hook"
    with pytest.raises(TargetRefused):
        check_url(url, resolve=fake_resolve)  # loopback, not allowed by default
    # "hooks.example.test" resolves nowhere in real DNS: only the pinned address gets there.
    with pinned_client(url, ["127.0.0.0/8"], resolve=fake_resolve, timeout=5) as client:
        response = client.post(url, content=b"{}")
    assert response.status_code == 200 and response.content == b"reached"
    assert server.seen == [{"path": "/hook", "host": f"hooks.example.test:{server.port}"}]


def test_no_second_lookup_defeats_rebinding(server):
    url = f"http://rebind.example.test:{server.port}/hook"
    calls = []

    def rebinding(host, port, **kwargs):
        # First answer: the address the operator allowed. Any later answer: the metadata service.
        calls.append(host)
        address = "127.0.0.1" if len(calls) == 1 else "169.254.169.254"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    with pinned_client(url, ["127.0.0.1"], resolve=rebinding, timeout=5) as client:
        assert client.get(url).status_code == 200
        assert client.get(url).status_code == 200
    assert calls == ["rebind.example.test"]
    assert len(server.seen) == 2


def test_falls_through_to_the_next_approved_address(server):
    url = f"http://hooks.example.test:{server.port}/hook"
    # Nothing listens on 127.0.0.2 at that port; the second address answers.
    with httpx.Client(transport=PinnedTransport(url, ["127.0.0.2", "127.0.0.1"]), trust_env=False, timeout=5) as client:
        assert client.get(url).status_code == 200
    assert len(server.seen) == 1


def test_connects_only_to_the_pinned_address(server):
    url = f"http://hooks.example.test:{server.port}/hook"
    with httpx.Client(transport=PinnedTransport(url, ["127.0.0.2"]), trust_env=False, timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            client.get(url)
    assert server.seen == []


def test_other_origins_are_refused_by_the_transport(server):
    url = f"http://hooks.example.test:{server.port}/hook"
    with pinned_client(url, ["127.0.0.0/8"], resolve=fake_resolve, timeout=5) as client:
        for other in (f"http://other.example.test:{server.port}/hook", f"http://hooks.example.test:{server.port + 1}/",
                      f"https://hooks.example.test:{server.port}/hook", "http://169.254.169.254/latest/meta-data/"):
            with pytest.raises(TargetRefused, match="another origin"):
                client.get(other)
    assert server.seen == []


def test_redirects_are_not_followed(server):
    url = f"http://hooks.example.test:{server.port}/redirect"
    with pinned_client(url, ["127.0.0.0/8"], resolve=fake_resolve, timeout=5) as client:
        response = client.get(url)
    assert response.status_code == 302
    assert [s["path"] for s in server.seen] == ["/redirect"]


def test_proxy_settings_in_the_environment_are_ignored(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    url = f"http://hooks.example.test:{server.port}/hook"
    with pinned_client(url, ["127.0.0.0/8"], resolve=fake_resolve, timeout=5) as client:
        assert client.get(url).status_code == 200


def test_transport_arguments_are_checked():
    with pytest.raises(ValueError, match="at least one"):
        PinnedTransport("http://hooks.example.test/", [])
    with pytest.raises(ValueError, match="not an IP address"):
        PinnedTransport("http://hooks.example.test/", ["hooks.example.test"])
    with pytest.raises(TypeError):
        PinnedTransport("http://hooks.example.test/", "127.0.0.1")
    with pytest.raises(TargetRefused):
        PinnedTransport("ftp://hooks.example.test/", ["127.0.0.1"])


def test_pinned_client_refuses_before_connecting():
    with pytest.raises(TargetRefused):
        pinned_client("http://metadata.example.com/", resolve=fake_resolve)


def _self_signed(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
def tls_server(tmp_path) -> Iterator[tuple[_Server, ssl.SSLContext, list[str]]]:
    cert_pem, key_pem = _self_signed("hooks.example.test")
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    sni: list[str] = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni.append(name)
    client_ctx = ssl.create_default_context(cadata=cert_pem.decode())
    with _Server(server_ctx) as srv:
        yield srv, client_ctx, sni


def test_tls_keeps_the_name_for_sni_and_certificate(tls_server):
    server, client_ctx, sni = tls_server
    url = f"https://hooks.example.test:{server.port}/hook"
    with pinned_client(url, ["127.0.0.0/8"], resolve=fake_resolve, timeout=5, verify=client_ctx) as client:
        response = client.get(url)
    assert response.status_code == 200
    assert sni == ["hooks.example.test"]
    assert server.seen == [{"path": "/hook", "host": f"hooks.example.test:{server.port}"}]


def test_tls_certificate_is_still_checked_against_the_name(tls_server):
    server, client_ctx, _ = tls_server
    url = f"https://elsewhere.example.test:{server.port}/hook"
    DNS_ELSEWHERE = {"elsewhere.example.test": ["127.0.0.1"]}

    def resolve(host, port, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in DNS_ELSEWHERE[host]]

    with pinned_client(url, ["127.0.0.0/8"], resolve=resolve, timeout=5, verify=client_ctx) as client:
        with pytest.raises(httpx.ConnectError, match="certificate|hostname"):
            client.get(url)
    assert server.seen == []


def test_ipv6_loopback_literal(tmp_path):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")

    class V6Server(http.server.HTTPServer):
        address_family = socket.AF_INET6

    try:
        httpd = V6Server(("::1", 0), _Recorder)
    except OSError:
        pytest.skip("::1 is not configured")
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://[::1]:{httpd.server_address[1]}/hook"
        with pytest.raises(TargetRefused):
            check_url(url, resolve=no_dns)
        with pinned_client(url, ["::1/128"], resolve=no_dns, timeout=5) as client:
            assert client.get(url).status_code == 200
        assert httpd.seen[0]["host"] == f"[::1]:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_allow_entries_parse_as_documented():
    hosts, networks = netguard._parse_allow(("Hooks.Example.Test.", "127.0.0.0/8", "::1/128", "10.1.2.3"))
    assert hosts == frozenset({"hooks.example.test"})
    assert networks == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"),
                        ipaddress.ip_network("10.1.2.3/32"))
