"""The relay ends the switches' TLS: a switch with a certificate the CA
signed gets its session, relayed in plain OpenFlow; any other never gets
past the handshake. The certificates are made here with openssl."""

from __future__ import annotations

import asyncio
import ssl
import subprocess

import pytest
from sdn_ha_mirror.openflow import OFPT, Framer, pack
from sdn_ha_mirror.relay import Settings, start_server

from .test_relay import Primary, read_messages


def make_ca(directory, name):
    key, cert = directory / f"{name}-key.pem", directory / f"{name}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def make_cert(directory, name, ca):
    key, csr, cert = directory / f"{name}-key.pem", directory / f"{name}.csr", directory / f"{name}.pem"
    subprocess.run(
        ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", csr, "-subj", f"/CN={name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
         "-out", cert, "-days", "2"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca, stranger = make_ca(directory, "ca"), make_ca(directory, "stranger")
    return {
        "ca": ca,
        "lb": make_cert(directory, "lb", ca),
        "switch": make_cert(directory, "sw1", ca),
        "forged": make_cert(directory, "forged", stranger),
    }


def server_context(pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(pki["lb"][1], pki["lb"][0])
    context.load_verify_locations(cafile=pki["ca"][1])
    return context


def client_context(pki, cert: str | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # as OVS: the chain is checked, not a name
    context.load_verify_locations(cafile=pki["ca"][1])
    if cert:
        context.load_cert_chain(pki[cert][1], pki[cert][0])
    return context


async def connect(pki, cert: str | None):
    """A switch (with `cert`, or none) through a TLS relay: what it read, and
    what the primary path got in plain OpenFlow."""
    primary = Primary()
    primary_server = await asyncio.start_server(primary.handle, "127.0.0.1", 0)
    settings = Settings(primary=primary_server.sockets[0].getsockname()[:2])
    relay = await start_server(settings, host="127.0.0.1", port=0, tls=server_context(pki))
    got = []
    try:
        reader, writer = await asyncio.open_connection(
            *relay.sockets[0].getsockname()[:2], ssl=client_context(pki, cert)
        )
        writer.write(pack(4, OFPT.HELLO, 1) + pack(4, OFPT.ECHO_REQUEST, 2, b"tls"))
        got = [m.type for m in await read_messages(reader, 3, timeout=2.0)]
        writer.close()
    except (ssl.SSLError, ConnectionError, TimeoutError):
        pass
    await asyncio.sleep(0.05)
    for server in (relay, primary_server):
        server.close()
    return got, [m.type for m in Framer().feed(bytes(primary.received))]


def test_a_switch_with_a_certificate_the_ca_signed_is_relayed_in_plain_openflow(pki):
    got, primary = asyncio.run(connect(pki, "switch"))
    assert got == [OFPT.HELLO, OFPT.FEATURES_REQUEST, OFPT.MULTIPART_REQUEST]
    assert primary == [OFPT.HELLO, OFPT.ECHO_REQUEST]


@pytest.mark.parametrize("cert", [None, "forged"])
def test_a_switch_without_such_a_certificate_never_reaches_a_controller(pki, cert):
    got, primary = asyncio.run(connect(pki, cert))
    assert got == [] and primary == []
