"""A stream batch's plan and hand-over: the segments follow each client last, with the client its rescore saved."""
from __future__ import annotations

from chalicelib.domain import segment_cases, stream_cases
from chalicelib.domain.stream_cases import Change, apply, plan
from tests.fakes import client


def _client_change(client_id: str, version_before: int, version_after: int, seq: str) -> Change:
    return Change("MODIFY", "client", "t1", {"id": client_id, "version": version_before},
                  {"id": client_id, "version": version_after}, seq)


def _contact(client_id: str, seq: str) -> Change:
    return Change("INSERT", "contact", "t1", None, {"id": "p" + seq, "client_id": client_id}, seq)


def test_the_segments_follow_each_client_after_every_rescore_of_the_batch():
    derived = _client_change("c1", 3, 3, "1")  # a derived write: the segments follow, nothing is rescored
    changes = [derived, _client_change("c2", 1, 2, "2"), _contact("c1", "3")]
    effects = list(plan(changes).effects)
    assert effects == [("rescore", "t1", "c2"), ("rescore", "t1", "c1"), ("client", "t1", "c1"),
                       ("client", "t1", "c2")]


def test_the_client_a_rescore_saved_is_handed_to_its_segments_following(monkeypatch):
    saved = client("c1", "Acme")
    followed: list = []
    monkeypatch.setitem(stream_cases.EFFECTS, "rescore", lambda stores, client_id: saved)
    monkeypatch.setattr(segment_cases, "follow_client", lambda stores, client_id, known: followed.append(known))
    handed: dict = {}
    for what in ("rescore", "client"):
        apply(None, what, "c1", handed)  # the effects are replaced: no storage is used
    apply(None, "client", "c2", handed)
    assert followed == [saved, None]  # c2 was saved by no effect of the batch: it is read


def test_an_effect_that_changes_clients_without_answering_them_ends_the_hand_over(monkeypatch):
    monkeypatch.setitem(stream_cases.EFFECTS, "category_deleted", lambda stores, category_id: 2)
    handed = {"c1": client("c1", "Acme")}
    apply(None, "category_deleted", "cat1", handed)
    assert handed == {}
