"""TLS in front of the real service: the real client talks TLS to a real TLS-terminating proxy
(Debian's nginx with `grpc_pass`, installed by `make test-tools`) that speaks plaintext HTTP/2
to Ray's gRPC proxy on loopback, the way the Kubernetes Ingress does (docs/deploy.md#tls).
The server's certificate is checked: a client that trusts another CA, or expects another name,
or speaks plaintext, does not get through."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from emer_proto import emotion_pb2 as pb

from clients.client import EmotionClient
from clients.options import ClientOptions
from services.local_server import free_port
from tests.certificates import cert_pem, certificate, key_pem

pytestmark = pytest.mark.integration

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 80m;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {dir}/server.pem;
        ssl_certificate_key {dir}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            grpc_pass grpc://{upstream};
            grpc_read_timeout 300s;
            grpc_send_timeout 300s;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def tls_proxy(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """nginx terminating TLS on loopback in front of `server`; yields its address and CA file."""
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        message = "nginx not installed (make test-tools installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("tls")
    folder.chmod(0o755)  # nginx's workers drop root
    ca_key, ca = certificate("emer test CA", ca=True)
    key, cert = certificate("emer.test", dns=["emer.test"], ips=["127.0.0.1"], issuer=(ca_key, ca))
    (folder / "server.pem").write_bytes(cert_pem(cert) + cert_pem(ca))
    (folder / "server.key").write_bytes(key_pem(key))
    (folder / "ca.pem").write_bytes(cert_pem(ca))
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=folder, port=port, upstream=server))
    proc = subprocess.Popen(
        [nginx, "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.PIPE, text=True
    )
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        options = ClientOptions(address=address, root_certificates=folder / "ca.pem")
        with EmotionClient(options) as client:
            while not client.health(timeout_s=5):
                if proc.poll() is not None or time.monotonic() > deadline:
                    errors = (
                        (folder / "error.log").read_text()
                        if (folder / "error.log").exists()
                        else ""
                    )
                    started = proc.stderr.read() if proc.stderr else ""
                    pytest.fail(f"nginx did not come up: {started} {errors}")
                time.sleep(0.5)
        yield address, folder / "ca.pem"
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_client_analyzes_over_tls_with_the_certificate_checked(
    tls_proxy: tuple[str, Path],
) -> None:
    address, ca = tls_proxy
    options = ClientOptions(address=address, root_certificates=ca, timeout_s=120)
    with EmotionClient(options) as client:
        assert client.health()
        answer = client.analyze(pb.AnalyzeRequest(subtitle="Thank you so much, this is wonderful!"))
        assert answer.clues.text.available and answer.explanation
        events = list(client.analyze_stream(pb.AnalyzeRequest(subtitle="I am furious with you.")))
        assert events[-1].HasField("summary")
        # A status from the service crosses the proxy unchanged.
        with pytest.raises(grpc.RpcError) as err:
            client.analyze(pb.AnalyzeRequest())
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_certificate_from_another_ca_or_for_another_name_is_refused(
    tls_proxy: tuple[str, Path], tmp_path: Path
) -> None:
    address, ca = tls_proxy
    _, other = certificate("some other CA", ca=True)
    (tmp_path / "other.pem").write_bytes(cert_pem(other))
    wrong = [
        ClientOptions(address=address, root_certificates=tmp_path / "other.pem", timeout_s=10),
        ClientOptions(
            address=address, root_certificates=ca, server_name_override="evil.test", timeout_s=10
        ),
    ]
    for options in wrong:
        with EmotionClient(options) as client:
            assert not client.health(timeout_s=10)
            with pytest.raises(grpc.RpcError) as err:
                client.analyze(pb.AnalyzeRequest(subtitle="hello"))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    with EmotionClient(ClientOptions(address=address, timeout_s=10)) as plaintext:
        assert not plaintext.health(timeout_s=10)
