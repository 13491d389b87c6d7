"""Pure parsing of raw inbound MIME email (SES) into a ParsedEmail: no storage, no AWS."""
from __future__ import annotations

import codecs
import email
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
_ID_RE = re.compile(r"<[^<>]+>")
_EMAIL_RE = re.compile(r"[^\s<>\"'(),;:\[\]@]+@[^\s<>\"'(),;:\[\]@]+")
_PREFIX_RE = re.compile(r"^(?:\s*(?:re|fwd?)\s*(?:\[\d+\])?\s*:)+", re.IGNORECASE)
_PARA_TAGS = frozenset({"blockquote", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "ol", "p", "pre", "table", "ul"})
_LINE_TAGS = frozenset({"address", "article", "aside", "dd", "div", "dt", "footer", "form", "header", "hr", "li",
                        "main", "nav", "section", "tr"})
_SKIP_TAGS = frozenset({"script", "style", "title"})


class MalformedEmail(ValueError):
    """The bytes cannot be logged as an email: not MIME at all, or no usable From."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    from_email: str
    from_name: str
    to: list[str]
    cc: list[str]
    subject: str
    date: datetime | None
    text: str
    attachments: list[Attachment] = field(default_factory=list)
    rejected_attachments: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def normalise_subject(subject: str) -> str:
    """Threading key: leading Re:/Fw:/Fwd: stripped (any case, repeated), white space folded, casefolded."""
    return " ".join(_PREFIX_RE.sub("", subject or "").split()).casefold()


def all_reply_ids(parsed: ParsedEmail) -> list[str]:
    """In-Reply-To first, then References newest (last) first, without duplicates."""
    return list(dict.fromkeys(([parsed.in_reply_to] if parsed.in_reply_to else []) + parsed.references[::-1]))


def _header(msg: Message, name: str) -> Any:
    """policy.default's parsed header object (with `.addresses`, `.datetime`); the stubs type it as text."""
    return msg.get(name)


def _headers(msg: Message, name: str) -> list[Any]:
    return msg.get_all(name) or []


def _safe(fn, default=None):  # the stdlib raises on some malformed input (policy.default headers, codecs)
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return default


def _decode_bytes(data: bytes, charset: str | None, problems: list[str], where: str) -> str:
    # the declared charset, else utf-8, cp1252 and latin-1 (never fails); a failed declared charset is a problem
    cs = (charset or "").strip().strip("\"'").lower() or None
    cs = "utf-8" if cs in ("us-ascii", "ascii") else cs  # ASCII labels on 8-bit text are common
    text = _safe(lambda: data.decode(cs)) if cs else None
    if text is None and cs:
        kind = "unknown charset" if _safe(lambda: codecs.lookup(cs)) is None else "bytes not valid for charset"
        problems.append(f"{where}: {kind} {cs!r}, decoded leniently")
    if text is not None:
        return text
    return _safe(lambda: data.decode("utf-8")) or _safe(lambda: data.decode("cp1252")) or data.decode("latin-1")


def _fix_surrogates(s: str, problems: list[str], where: str) -> str:  # raw 8-bit header bytes as surrogates
    if not re.search("[\ud800-\udfff]", s):
        return s
    problems.append(f"{where}: raw 8-bit header, decoded leniently")
    data = _safe(lambda: s.encode("utf-8", "surrogateescape")) or s.encode("utf-8", "replace")
    return _decode_bytes(data, None, problems, where)


def _decode_words(value: str, problems: list[str], where: str) -> str:  # RFC 2047, each chunk decoded leniently
    chunks = _safe(lambda: decode_header(value), [(value, None)])  # a broken encoded word stays raw
    return "".join(c if isinstance(c, str) else _decode_bytes(c, cs, problems, where) for c, cs in chunks)


def _raw_values(msg: Message, name: str, problems: list[str]) -> list[str]:
    values = [re.sub(r"\r?\n(?=[ \t])", "", str(v)) for k, v in msg.raw_items() if k.lower() == name.lower()]
    return [_fix_surrogates(v.replace("\r", "").replace("\n", ""), problems, name) for v in values]


def _text_header(msg: Message, name: str, problems: list[str]) -> str:
    text = _fix_surrogates(_safe(lambda: str(msg.get(name) or ""), "\ufffd"), problems, name)
    if "\ufffd" in text:  # redo from the raw value with lenient charsets
        text = "".join(_decode_words(raw, problems, name) for raw in _raw_values(msg, name, problems)[:1])
    return " ".join(text.split())


def _addresses(msg: Message, name: str, problems: list[str]) -> list[tuple[str, str]]:  # (name, lowercased addr)
    pairs = _safe(lambda: [(a.display_name, a.addr_spec) for h in _headers(msg, name) for a in h.addresses])
    if not pairs or not all(_EMAIL_RE.search(a or "") for _, a in pairs):  # retry with the compat32 parser
        compat = [(_decode_words(n, problems, name), a) for n, a in getaddresses(_raw_values(msg, name, problems))]
        pairs = max(pairs or [], compat, key=lambda ps: sum(bool(_EMAIL_RE.search(a or "")) for _, a in ps))
    out = []
    for display, addr in pairs:
        found = _EMAIL_RE.search(_fix_surrogates(addr or "", problems, name))
        if found:
            display = _fix_surrogates(display or "", problems, name)
            if "\ufffd" in display or "=?" in display:
                display = _decode_words(display, problems, name)
            out.append((" ".join(display.split()), found.group(0).lower()))
    return out


def _ids(msg: Message, name: str, problems: list[str]) -> list[str]:
    raw = " ".join(_raw_values(msg, name, problems))
    found = [re.sub(r"\s+", "", m) for m in _ID_RE.findall(raw)] or raw.split()[:1]
    return list(dict.fromkeys(found))


def _date(msg: Message, problems: list[str]) -> datetime | None:
    raws = _raw_values(msg, "Date", problems)
    value = _safe(lambda: _header(msg, "Date").datetime) or _safe(lambda: parsedate_to_datetime(raws[0]))
    if not isinstance(value, datetime):
        problems.extend(["Date: unparseable, ignored"] if raws else [])
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _HtmlToText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = self.pre = 0

    def _ensure_breaks(self, n: int) -> None:
        tail = "".join(self.out[-8:])
        if self.out and (have := tail[len(tail.rstrip()):].count("\n")) < n:
            self.out.append("\n" * (n - have))

    def handle_starttag(self, tag, attrs, step=1):
        self.skip = max(0, self.skip + step) if tag in _SKIP_TAGS else self.skip
        self.pre = max(0, self.pre + step) if tag == "pre" else self.pre
        if tag == "br" or tag in ("td", "th"):
            self.out.append(("\n" if tag == "br" else " ") if step > 0 else "")
        elif tag in _PARA_TAGS or tag in _LINE_TAGS:
            self._ensure_breaks(2 if tag in _PARA_TAGS else 1)

    def handle_endtag(self, tag):
        self.handle_starttag(tag, [], step=-1)

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data.replace(" ", "\xa0") if self.pre else re.sub(r"[ \t\r\n\f]+", " ", data))


def _fed(parser: _HtmlToText, html: str) -> str:
    parser.feed(html)
    parser.close()
    return "".join(parser.out)


def html_to_text(html: str) -> str:
    """Readable text from HTML: script/style dropped, entities unescaped, blocks and <br> become line breaks."""
    parser = _HtmlToText()  # lenient; the regex is a last resort should it ever raise
    text = _safe(lambda: _fed(parser, html)) or re.sub("<[^>]*>", " ", html)
    lines = [line.strip(" \t").replace("\xa0", " ").rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _clean_text(text: str) -> str:
    return "\n".join(line.rstrip() for line in re.sub(r"\r\n?", "\n", text).split("\n")).strip("\n")


def _leaves(part: Message, depth: int = 0) -> list[Message]:
    payload: Any = part.get_payload()  # a multipart's: its parts
    if part.get_content_maintype() != "multipart" or not isinstance(payload, list) or depth > 40:
        return [part]
    return [leaf for sub in payload for leaf in _leaves(sub, depth + 1)]


def _part_data(part: Message) -> bytes:
    if part.get_content_maintype() == "message":  # e.g. a forwarded message/rfc822 kept whole
        inner = _safe(lambda: part.get_payload(0), part.get_payload())
        return inner.as_bytes(policy=policy.compat32) if isinstance(inner, Message) else str(inner).encode()
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _filename(part: Message, problems: list[str]) -> str | None:
    name = _safe(part.get_filename)
    if isinstance(name, str) and "=?" in (name := _fix_surrogates(name, problems, "filename")):
        name = _decode_words(name, problems, "filename")
    return (name.strip() or None) if isinstance(name, str) else None


def _body_and_attachments(msg: Message, limit: int, problems: list[str]):
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    rejected: list[tuple[str, str]] = []
    for index, part in enumerate(_leaves(msg)):
        try:
            ctype, disposition, data = part.get_content_type(), _safe(part.get_content_disposition), _part_data(part)
            is_body = ctype in ("text/plain", "text/html") or part.get_content_maintype() == "multipart"
            if disposition == "attachment" or not is_body:
                name = _filename(part, problems) or f"attachment-{index}{mimetypes.guess_extension(ctype) or '.bin'}"
                if len(data) > limit:
                    rejected.append((name, f"{len(data)} bytes exceeds the limit of {limit} bytes"))
                else:
                    attachments.append(Attachment(name, ctype, len(data), data))
                continue
            text = _decode_bytes(data, part.get_content_charset(), problems, f"part {index} ({ctype})")
            (html if ctype == "text/html" else plain).append(text)
        except Exception as exc:  # noqa: BLE001 - one broken part must not lose the rest
            problems.append(f"part {index}: skipped ({type(exc).__name__}: {exc})")
    text = "\n\n".join(plain) if plain else html_to_text("\n".join(html)) if html else ""
    return _clean_text(text), attachments, rejected


def parse_email(raw: bytes, *, max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES) -> ParsedEmail:
    """Parse raw MIME bytes; raises MalformedEmail (and nothing else) when they cannot be logged as an email."""
    raw = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
    if not raw.strip():
        raise MalformedEmail("empty message")
    try:
        msg = email.message_from_bytes(raw, policy=policy.default)
        if not list(msg.raw_items()):
            raise MalformedEmail("not a MIME message: no headers")
        problems: list[str] = []
        senders = _addresses(msg, "From", problems)
        if not senders:
            raise MalformedEmail("missing From")
        text, attachments, rejected = _body_and_attachments(msg, max_attachment_bytes, problems)
        in_reply_to, message_id = _ids(msg, "In-Reply-To", problems), _ids(msg, "Message-ID", problems)
        defects = [f"MIME defect: {type(d).__name__}" for part in msg.walk() for d in part.defects]
        return ParsedEmail(
            message_id=message_id[0] if message_id else None, in_reply_to=in_reply_to[0] if in_reply_to else None,
            references=_ids(msg, "References", problems), from_email=senders[0][1], from_name=senders[0][0],
            to=[a for _, a in _addresses(msg, "To", problems)], cc=[a for _, a in _addresses(msg, "Cc", problems)],
            subject=_text_header(msg, "Subject", problems), date=_date(msg, problems), text=text,
            attachments=attachments, rejected_attachments=rejected, problems=list(dict.fromkeys(problems + defects)),
        )
    except MalformedEmail:
        raise
    except Exception as exc:  # the contract: ParsedEmail or MalformedEmail, nothing else
        raise MalformedEmail(f"unparseable message: {type(exc).__name__}: {exc}") from exc
