"""Which clients may be one: names without case, accents, punctuation and legal forms; domains but free mail."""
from __future__ import annotations

import pytest

from chalicelib.domain.duplicates import Candidate, candidates, email_domain, name_key, normalise_name, pair


@pytest.mark.parametrize("a,b", [
    ("ACME Events GmbH", "Acme Events"), ("Société Générale S.A.", "societe generale"),
    ("Müller & Söhne KG", "mueller und sohne"[:0] + "muller and sohne"), ("  The Stage Co.  ", "stage"),
    ("Bolt, Ltd.", "bolt"), ("Event-Hall", "event hall"),
])
def test_names_of_one_company_normalise_alike(a, b):
    assert normalise_name(a) == normalise_name(b)


def test_different_companies_stay_apart_and_a_legal_form_alone_is_kept():
    assert normalise_name("Acme Events") != normalise_name("Acme Rentals")
    assert normalise_name("GmbH") == "gmbh"  # nothing left but the form: the name is the form
    assert name_key("!!!", "DE") is None


def test_the_name_key_holds_the_country_so_namesakes_abroad_are_no_duplicates():
    assert name_key("Acme", "de") == "acme|DE" != name_key("Acme", "FR")
    assert name_key("Acme", None) == "acme|"


def test_free_mail_domains_say_nothing():
    assert email_domain("ana@Acme.Example") == "acme.example"
    assert email_domain("ana@gmail.com") is None and email_domain("x@outlook.com") is None
    assert email_domain(None) is None and email_domain("no-at-sign") is None


def test_candidates_gather_every_shared_key_most_reasons_first_without_the_client_itself():
    holders = {("email", "a@acme.example"): ["c1", "c2"], ("name", "acme|"): ["c1", "c2", "c3"],
               ("domain", "acme.example"): ["c1", "c4"], ("domain", "us.example"): ["c1", "c5"]}
    assert candidates(holders, "c1", frozenset({"us.example"})) == [
        Candidate("c2", ("same_email", "same_name_and_country")), Candidate("c3", ("same_name_and_country",)),
        Candidate("c4", ("same_email_domain",))]


def test_a_pair_is_one_pair_in_either_order():
    assert pair("b", "a") == pair("a", "b") == ("a", "b")
