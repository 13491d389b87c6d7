"""Inbound MIME parsing: real-world fixtures in tests/unit/mime/, bad input and subject normalisation."""
from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.inbound_mime import (
    Attachment,
    MalformedEmail,
    ParsedEmail,
    all_reply_ids,
    html_to_text,
    normalise_subject,
    parse_email,
)

MIME = Path(__file__).parent / "mime"


def load(name: str) -> bytes:
    return (MIME / name).read_bytes()


def parse(name: str, **kwargs) -> ParsedEmail:
    return parse_email(load(name), **kwargs)


# --- structure ------------------------------------------------------------------------------------------------

def test_alternative_picks_the_plain_text_part_and_reads_headers():
    assert b"\r\n" in load("alternative.eml")  # CRLF fixture, as SES stores it
    p = parse("alternative.eml")
    assert p.text == (
        "Hi team,\n\nCould you send the quote for May? We need 40 units \u2013 delivered to Oslo.\n\nThanks,\nAnna"
    )
    assert "<div" not in p.text and "\r" not in p.text
    assert p.from_email == "anna.berg@example.com" and p.from_name == "Anna Berg"
    assert p.to == ["inbox@acme.nexusrms.test"]
    assert p.cc == ["john.smith@example.com", "ops@example.com"]
    assert p.subject == "Quote for May"
    assert p.message_id == "<CAFx1-abc@mail.example.com>"
    assert p.in_reply_to is None and p.references == []
    assert p.date == datetime(2024, 6, 3, 9, 15, tzinfo=UTC)
    assert p.attachments == [] and p.rejected_attachments == [] and p.problems == []


def test_html_only_is_converted_to_readable_text():
    p = parse("html_only.eml")
    assert p.text == (
        "Invoice #42\n\nDear customer, your invoice is ready.\n\nTotal \u20ac1,200 & VAT\n\n"
        "Pay by 30 June\nQuestions? Reply!\n\nLine one\nLine two"
    )
    for absent in ("alert", "color: red", "Invoice mail", "<", "&amp;", "&nbsp;"):
        assert absent not in p.text
    assert p.date == datetime(2024, 6, 4, 12, 0, tzinfo=UTC)  # -0400 converted to UTC
    assert p.from_name == ""


def test_mixed_with_pdf_attachment_and_inline_image():
    p = parse("mixed_attachments.eml")
    assert p.text == "Please find the signed contract attached.\nOur logo is below."
    by_name = {a.filename: a for a in p.attachments}
    assert set(by_name) == {"Contract 2024.pdf", "logo.png"}
    pdf = by_name["Contract 2024.pdf"]
    assert pdf.content_type == "application/pdf"
    assert pdf.data == load("contract.pdf.bin") and pdf.size == len(pdf.data)
    logo = by_name["logo.png"]
    assert logo.content_type == "image/png" and logo.data.startswith(b"\x89PNG") and logo.size == len(logo.data)
    assert p.rejected_attachments == [] and p.problems == []


def test_attachment_over_the_limit_is_rejected_with_a_reason():
    p = parse("mixed_attachments.eml", max_attachment_bytes=1000)
    assert [a.filename for a in p.attachments] == ["logo.png"]
    assert len(p.rejected_attachments) == 1
    name, reason = p.rejected_attachments[0]
    assert name == "Contract 2024.pdf" and "1540 bytes" in reason and "1000" in reason
    assert "Please find the signed contract" in p.text


def test_attachment_exactly_at_the_limit_is_kept():
    p = parse("mixed_attachments.eml", max_attachment_bytes=1540)
    assert {a.filename for a in p.attachments} == {"Contract 2024.pdf", "logo.png"}


def test_forwarded_message_and_unnamed_parts_become_attachments_not_body():
    outer = EmailMessage()
    outer["From"], outer["To"], outer["Subject"] = "a@example.com", "inbox@acme.test", "Fwd: hello"
    outer.set_content("See below.")
    inner = EmailMessage()
    inner["From"], inner["Subject"] = "b@example.com", "hello"
    inner.set_content("inner body")
    outer.add_attachment(inner)  # message/rfc822
    outer.add_attachment(b"BEGIN:VCALENDAR", maintype="text", subtype="calendar")  # no filename
    p = parse_email(outer.as_bytes())
    assert p.text == "See below."
    kinds = [a.content_type for a in p.attachments]
    assert kinds == ["message/rfc822", "text/calendar"]
    assert b"inner body" in p.attachments[0].data
    assert all(a.filename for a in p.attachments)


# --- charsets and encoded words -------------------------------------------------------------------------------

def test_iso_8859_1_body_and_q_encoded_headers():
    p = parse("iso_8859_1.eml")
    assert p.from_name == "J\u00f6rg M\u00fcller" and p.from_email == "joerg@firma.example"
    assert p.subject == "\u00c4nderung der Lieferadresse"
    assert "bitte \u00e4ndern Sie die Lieferadresse auf Gro\u00dfe Stra\u00dfe 5." in p.text
    assert p.text.endswith("Gr\u00fc\u00dfe\nJ\u00f6rg")
    assert p.problems == []


def test_windows_1252_body_and_b_encoded_headers():
    p = parse("windows_1252.eml")
    assert p.from_name == "Cl\u00e9mence D\u00fcrand"
    assert p.subject == "Commande n\u00b0 12 \u2013 confirmation"
    assert "confirmation \u2013 le prix est de 1\u00a0200 \u20ac." in p.text
    assert "\u201cMerci\u201d pour votre confiance." in p.text
    assert p.problems == []


def test_body_mislabelled_as_utf8_falls_back_and_notes_a_problem():
    p = parse("mislabelled_utf8.eml")
    assert p.text == "Je voudrais un caf\u00e9 cr\u00e8me, s'il vous pla\u00eet."
    assert p.subject == "Caf\u00e9 order"  # encoded word also mislabelled
    assert any("utf-8" in problem and "part 0" in problem for problem in p.problems)
    assert "\ufffd" not in p.text + p.subject


def test_unknown_charset_and_bad_date_are_survivable():
    p = parse("unknown_charset.eml")
    assert p.text == "Na\u00efve r\u00e9sum\u00e9"
    assert p.date is None
    assert any("x-made-up-8bit" in problem for problem in p.problems)
    assert any(problem.startswith("Date") for problem in p.problems)


def test_malformed_headers_do_not_crash():
    p = parse("malformed_headers.eml")
    assert p.from_email == "broken@example.org"
    assert p.to == ["inbox@acme.nexusrms.test"] and p.cc == []
    assert p.message_id == "no-brackets-here@example.org"
    assert p.date is None
    assert p.subject.endswith("x\u00e9")  # unknown charset in an encoded word, decoded leniently
    assert p.text == "This claims to be multipart but has no boundary."
    assert p.problems  # all noted


def test_raw_8bit_headers_are_decoded():
    raw = "From: Ren\u00e9 <rene@example.com>\nTo: inbox@acme.test\nSubject: R\u00e9union demain\n\nbody\n"
    for encoding in ("utf-8", "latin-1"):
        p = parse_email(raw.encode(encoding))
        assert p.subject == "R\u00e9union demain" and p.from_name == "Ren\u00e9"


# --- replies and threading ------------------------------------------------------------------------------------

def test_reply_keeps_quoted_text_and_reply_ids():
    p = parse("reply.eml")
    assert p.in_reply_to == "<out-1@acme.nexusrms.test>"
    assert p.references == ["<CAFx1-abc@mail.example.com>", "<out-1@acme.nexusrms.test>"]
    assert p.message_id == "<reply-2@mail.example.com>"
    assert p.to == ["sales@acme.example", "inbox@acme.nexusrms.test"]
    assert p.text.startswith("Thanks, 40 units at that price works for us.\n\nAnna\n\nOn Mon, 3 Jun 2024")
    assert "\n> Hi Anna,\n>\n> The quote for May is attached.\n>> Could you send the quote for May?" in p.text
    assert normalise_subject(p.subject) == normalise_subject(parse("alternative.eml").subject) == "quote for may"


def test_all_reply_ids_in_reply_to_first_then_references_newest_first():
    assert all_reply_ids(parse("reply.eml")) == ["<out-1@acme.nexusrms.test>", "<CAFx1-abc@mail.example.com>"]
    assert all_reply_ids(parse("alternative.eml")) == []
    raw = (b"From: a@example.com\nIn-Reply-To: <c@x>\nReferences: <a@x> <b@x>\n <c@x>\n"
           b"Message-ID:\n <folded@x>\n\nhi\n")
    p = parse_email(raw)
    assert p.message_id == "<folded@x>"
    assert all_reply_ids(p) == ["<c@x>", "<b@x>", "<a@x>"]


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("RE:  Fwd: re: Quote   for  May", "quote for may"),
        ("Quote for May", "quote for may"),
        ("re:re:RE:Quote for May", "quote for may"),
        ("Fw: FWD: fw:  Quote\tfor\nMay ", "quote for may"),
        ("  Re : Quote for May", "quote for may"),
        ("Re[2]: Quote for May", "quote for may"),
        ("Review: Quote", "review: quote"),
        ("Quote Re: May", "quote re: may"),
        ("Forward planning", "forward planning"),
        ("STRASSE Stra\u00dfe", "strasse strasse"),
        ("Re:", ""),
        ("", ""),
    ],
)
def test_normalise_subject(subject, expected):
    assert normalise_subject(subject) == expected


def test_html_to_text_line_breaks():
    html = "<div>Hi,<br><br>line</div><div><br></div><div>next</div><ul><li>a</li><li>b</li></ul><p>x &lt; y</p>"
    assert html_to_text(html).strip() == "Hi,\n\nline\n\nnext\n\na\nb\n\nx < y"
    assert html_to_text("<pre>a\n  b</pre>").strip() == "a\n  b"


# --- bad input ------------------------------------------------------------------------------------------------

def test_missing_from_is_malformed():
    with pytest.raises(MalformedEmail, match="missing From"):
        parse("missing_from.eml")
    assert issubclass(MalformedEmail, ValueError)


def test_from_without_an_address_is_malformed():
    with pytest.raises(MalformedEmail, match="missing From"):
        parse_email(b"From: MAILER-DAEMON\nTo: inbox@acme.test\n\nbounce\n")


@pytest.mark.parametrize("raw", [b"", b"   \r\n\r\n", b"\x00\x01\x02 not an email", b"\xff\xfe\xfd"])
def test_non_mime_bytes_are_malformed(raw):
    with pytest.raises(MalformedEmail):
        parse_email(raw)


def test_headers_only_and_no_subject():
    p = parse_email(b"From: a@example.com\r\n\r\n")
    assert p.subject == "" and p.text == "" and p.message_id is None and p.date is None and p.to == []


def test_result_is_frozen():
    p = parse("alternative.eml")
    with pytest.raises(AttributeError):
        p.subject = "x"  # type: ignore[misc]
    assert isinstance(Attachment("a", "b/c", 0, b""), Attachment)


def _only_parsed_or_malformed(raw: bytes) -> None:
    try:
        result = parse_email(raw)
    except MalformedEmail:
        return
    assert isinstance(result, ParsedEmail)
    assert isinstance(result.text, str) and isinstance(result.subject, str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_garbage_bytes_never_raise_anything_else(raw):
    _only_parsed_or_malformed(raw)


_HEADER_LINES = st.sampled_from([
    b"From: a@example.com", b"From: =?utf-8?B?!!!?= <x@y.z>", b"From: \"Unclosed <u@example.com", b"To: <<>>, @, ;",
    b"Subject: =?bogus?Q?=E9?=", b"Subject: \xe9\xff", b"Date: Mon, 99 Foo 99999 99:99", b"Message-ID: <<<",
    b"Content-Type: multipart/mixed; boundary=b", b"Content-Type: text/plain; charset=\"\xff\"",
    b"Content-Transfer-Encoding: base64", b"Content-Disposition: attachment; filename*=bogus''%ZZ",
    b"--b", b"--b--", b"Content-Type: text/html", b"<p>x</p>", b"=?utf-8?q?x?=", b"", b"\xc3\x28 body",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_HEADER_LINES, max_size=30), st.sampled_from([b"\n", b"\r\n"]))
def test_mime_shaped_garbage_never_raises_anything_else(lines, newline):
    _only_parsed_or_malformed(newline.join(lines))
