"""The local run hands an .eml dropped in DATA_DIR/inbound to on_inbound_email, as the S3 trigger does in AWS."""
from __future__ import annotations

import time
import uuid

import requests


def test_an_email_dropped_in_the_inbox_folder_is_received(live_server):
    tenant = f"t{uuid.uuid4().hex[:8]}"
    headers, base = live_server.headers(tenant), live_server.base_url
    address = f"{tenant}@in.nexusrms.test"
    assert requests.patch(f"{base}/v1/settings/client", json={"inbound_address": address}, headers=headers,
                          timeout=30).status_code == 200
    inbox = live_server.data_dir / "inbound"
    inbox.mkdir(exist_ok=True)
    (inbox / f"{tenant}.eml").write_text(
        f"From: Stranger <stranger@example.test>\r\nTo: {address}\r\nSubject: Do you rent stages?\r\n"
        f"Message-ID: <{tenant}@example.test>\r\nDate: Mon, 02 Mar 2026 10:30:00 +0000\r\n\r\nHello!\r\n")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        items = requests.get(f"{base}/v1/inbox/unmatched", headers=headers, timeout=30).json()["items"]
        if items:
            assert items[0]["from_email"] == "stranger@example.test"
            assert items[0]["subject"] == "Do you rent stages?"
            return
        time.sleep(0.3)
    raise AssertionError("the dropped email was not received:\n" + live_server.output()[-2000:])
