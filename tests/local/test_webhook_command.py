"""`python -m chalicelib.local webhook`: signs a JSON file with the local Node secret and posts it (or prints curl)."""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from chalicelib.local.__main__ import main, sign_webhook

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EVENT = {"type": "client.linked", "tenant_id": "demo", "occurred_at": "2025-01-01T00:00:00Z",
         "data": {"node_client_id": "node-1", "client_id": "c1"}}


class Receiver(BaseHTTPRequestHandler):
    """Records each POST and answers 200 as the service does for a processed webhook."""

    received: list[tuple[dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        answer = json.dumps({"status": "processed"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(monkeypatch, tmp_path):
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PORT", str(server.server_address[1]))
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    # set first, so the undo removes what the command puts into os.environ as well
    monkeypatch.setenv("NODE_WEBHOOK_SECRET", "unset")
    monkeypatch.delenv("NODE_WEBHOOK_SECRET")
    (tmp_path / "node-webhook-secret").write_text(SECRET + "\n")  # as an earlier `make run` left it
    yield Receiver.received
    server.shutdown()
    server.server_close()


def test_the_signature_verifies_with_standard_webhooks():
    body = json.dumps(EVENT).encode()
    headers = sign_webhook(SECRET, body)
    assert headers["webhook-id"].startswith("msg_")
    assert Webhook(SECRET).verify(body, headers) == EVENT
    assert sign_webhook(SECRET, body, "msg_fixed")["webhook-id"] == "msg_fixed"


def test_the_command_posts_the_file_signed_with_the_persisted_secret(receiver, tmp_path, capsys):
    event = tmp_path / "event.json"
    event.write_text(json.dumps(EVENT, indent=2))
    assert main(["webhook", str(event)]) == 0
    ((headers, body),) = receiver
    assert body == event.read_bytes()  # the file's own bytes: what is signed is what is sent
    Webhook(SECRET).verify(body, headers)
    assert headers["content-type"] == "application/json"
    out = capsys.readouterr().out
    assert out.startswith("200 OK") and '{"status": "processed"}' in out


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_printed_curl_command_sends_a_valid_delivery(receiver, tmp_path, capsys):
    event = tmp_path / "event with space.json"
    event.write_text(json.dumps(EVENT))
    assert main(["webhook", "--print", "--id", "msg_again", str(event)]) == 0
    command = capsys.readouterr().out.strip()
    assert receiver == []  # printing sends nothing
    done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and json.loads(done.stdout) == {"status": "processed"}
    ((headers, body),) = receiver
    assert headers["webhook-id"] == "msg_again"
    Webhook(SECRET).verify(body, headers)
