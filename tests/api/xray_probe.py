"""Run as a script by test_tracing_api.py: one request and one email with X-Ray on, the segments sent printed."""
from __future__ import annotations

import json
import os
import socket
import sys

sys.path.insert(0, os.getcwd())
daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
daemon.bind(("127.0.0.1", 0))
daemon.settimeout(2)
os.environ["AWS_XRAY_DAEMON_ADDRESS"] = f"127.0.0.1:{daemon.getsockname()[1]}"

from chalice.test import Client  # noqa: E402
from moto import mock_aws  # noqa: E402

with mock_aws():
    from chalicelib import aws, mail
    from chalicelib.tables import create_table
    from chalicelib.tokens import mint_token

    create_table()
    aws.client("ses", region_name="eu-west-1").verify_domain_identity(Domain="acme.example")
    import app

    with Client(app.app) as client:
        answer = client.http.get("/v1/clients", headers={"Authorization": "Bearer " + mint_token("t1", ["admin"])})
    mail.send(mail.OutgoingEmail(from_address="crm@acme.example", to=["x@client.example"], subject="s", text="t"))
segments = []
try:
    while True:
        packet, _ = daemon.recvfrom(65535)
        segments.append(json.loads(packet.decode().split("\n", 1)[1]))  # after the daemon protocol's header line
except TimeoutError:
    pass
print(json.dumps({"status": answer.status_code, "segments": segments}))
