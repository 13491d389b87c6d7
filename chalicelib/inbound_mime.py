"""Pure parsing of raw inbound MIME email (SES) into a ParsedEmail: no storage, no AWS."""
from __future__ import annotations

import email
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
_FALLBACK_CHARSETS = ("utf-8", "cp1252")
_ID_RE = re.compile(r"<[^<>]+>")
_PREFIX_RE = re.compile(r"^(?:\s*(?:re|fwd?)\s*(?:\[\d+\])?\s*:)+", re.IGNORECASE)
_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt footer form h1 h2 h3 h4 h5 h6 header hr li "
    "main nav ol p pre section table tbody td th thead tr ul".split()
)
_SKIP_TAGS = frozenset(("script", "style", "title", "head"))


class MalformedEmail(ValueError):
    """The bytes cannot be understood as an email we can log (not MIME, or no sender)."""


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
    """Subject key for threading: leading Re:/Fw:/Fwd: stripped (repeated, any case), spaces folded, casefolded."""
    s = _PREFIX_RE.sub("", subject or "")
    return " ".join(s.split()).casefold()


def all_reply_ids(parsed: ParsedEmail) -> list[str]:
    """In-Reply-To first, then References newest (last) first, without duplicates."""
    ids = ([parsed.in_reply_to] if parsed.in_reply_to else []) + list(reversed(parsed.references))
    return list(dict.fromkeys(ids))


# --- decoding helpers -------------------------------------------------------------------------------------------

def _decode_bytes(data: bytes, charset: str | None, problems: list[str], where: str) -> str:
    cs = (charset or "").strip().strip('"').lower() or None
    if cs in ("us-ascii", "ascii"):
        cs = "utf-8"  # ASCII labels on 8-bit text are common; utf-8 is a superset
    if cs:
        try:
            return data.decode(cs)
        except (LookupError, UnicodeError, ValueError, TypeError) as exc:
            kind = "unknown charset" if isinstance(exc, LookupError) else "bytes not valid for charset"
            problems.append(f"{where}: {kind} {cs!r}, decoded leniently")
    for fallback in _FALLBACK_CHARSETS:
        try:
            return data.decode(fallback)
        except UnicodeDecodeError:
            continue
    if not cs:
        problems.append(f"{where}: undeclared 8-bit charset, decoded as latin-1")
    return data.decode("latin-1")


def _fix_surrogates(s: str, problems: list[str], where: str) -> str:
    """Raw 8-bit bytes in headers arrive as surrogate escapes: decode them leniently."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        data = s.encode("utf-8", "surrogateescape") if _escapable(s) else s.encode("utf-8", "replace")
        return _decode_bytes(data, None, problems, where)


def _escapable(s: str) -> bool:
    try:
        s.encode("utf-8", "surrogateescape")
        return True
    except UnicodeEncodeError:
        return False


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")


def _raw_values(msg: Message, name: str) -> list[str]:
    return [_unfold(str(v)) for k, v in msg.raw_items() if k.lower() == name.lower()]


def _decode_words(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001 - a broken encoded word leaves the raw text
        return value


def _text_header(msg: Message, name: str, problems: list[str]) -> str | None:
    try:
        value = msg.get(name)
        text = None if value is None else str(value)
    except Exception:  # noqa: BLE001 - policy.default raises on some malformed headers
        raws = _raw_values(msg, name)
        text = _decode_words(raws[0]) if raws else None
        problems.append(f"{name}: malformed header, decoded leniently")
    return None if text is None else _fix_surrogates(text, problems, name)


def _addresses(msg: Message, name: str, problems: list[str]) -> list[tuple[str, str]]:
    try:
        pairs = [(a.display_name or "", a.addr_spec or "") for h in msg.get_all(name) or [] for a in h.addresses]
    except Exception:  # noqa: BLE001 - fall back to the compat32 address parser on the raw value
        problems.append(f"{name}: malformed address header, parsed leniently")
        pairs = [(_decode_words(n), a) for n, a in getaddresses(_raw_values(msg, name))]
    out = []
    for display, addr in pairs:
        addr = _fix_surrogates(addr, problems, name).strip().strip("<>").lower()
        if addr and addr != "@":
            out.append((_fix_surrogates(display, problems, name).strip(), addr))
    return out


def _ids(msg: Message, name: str, problems: list[str]) -> list[str]:
    raw = " ".join(_fix_surrogates(v, problems, name) for v in _raw_values(msg, name))
    found = [re.sub(r"\s+", "", m) for m in _ID_RE.findall(raw)]
    if not found and raw.strip():
        found = [raw.split()[0]]
    return list(dict.fromkeys(found))


def _date(msg: Message, problems: list[str]) -> datetime | None:
    try:
        header = msg.get("Date")
        value = getattr(header, "datetime", None) if header is not None else None
    except Exception:  # noqa: BLE001
        value = None
    if value is None:
        raws = _raw_values(msg, "Date")
        try:
            value = parsedate_to_datetime(raws[0]) if raws else None
        except (TypeError, ValueError, IndexError, OverflowError):
            value = None
        if value is None and raws:
            problems.append("Date: unparseable, ignored")
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# --- body and attachments ---------------------------------------------------------------------------------------

class _HtmlToText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")
        self.pre += tag == "pre"

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS and tag != "br":
            self.out.append("\n")
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data if self.pre else re.sub(r"[ \t\r\n\f]+", " ", data))


def html_to_text(html: str) -> str:
    """Readable text from HTML: scripts/styles dropped, block elements and <br> become line breaks."""
    parser = _HtmlToText()
    try:
        parser.feed(html)
        parser.close()
        text = "".join(parser.out)
    except Exception:  # noqa: BLE001 - HTMLParser is lenient; this is a last resort
        text = re.sub(r"<[^>]*>", " ", html)
    lines = [line.replace("\xa0", " ").strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _clean_text(text: str) -> str:
    lines = re.sub(r"\r\n?", "\n", text).split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _leaves(part: Message, depth: int = 0):
    payload = part.get_payload()
    if part.get_content_maintype() == "multipart" and isinstance(payload, list) and depth < 50:
        for sub in payload:
            yield from _leaves(sub, depth + 1)
    else:
        yield part


def _part_data(part: Message) -> bytes:
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        return inner.as_bytes(policy=policy.compat32) if isinstance(inner, Message) else str(inner).encode()
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = part.get_param("name", header="content-type") if part.get("content-type") else None
    if isinstance(name, tuple):  # undecoded RFC 2231 value
        name = email.utils.collapse_rfc2231_value(name)
    if name and "=?" in name:
        name = _decode_words(name)
    return (name.strip() or None) if isinstance(name, str) else None


def _body_and_attachments(msg: Message, limit: int, problems: list[str]):
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    rejected: list[tuple[str, str]] = []
    for index, part in enumerate(_leaves(msg)):
        try:
            ctype = part.get_content_type()
            try:
                disposition = part.get_content_disposition()
            except Exception:  # noqa: BLE001
                disposition = None
            filename = _filename(part)
            data = _part_data(part)
            is_body = ctype in ("text/plain", "text/html") or part.get_content_maintype() == "multipart"
            if disposition == "attachment" or not is_body:
                name = filename or f"attachment-{index}{mimetypes.guess_extension(ctype) or '.bin'}"
                if len(data) > limit:
                    rejected.append((name, f"{len(data)} bytes exceeds the limit of {limit} bytes"))
                else:
                    attachments.append(Attachment(name, ctype, len(data), data))
                continue
            text = _decode_bytes(data, part.get_content_charset(), problems, f"part {index} ({ctype})")
            (html if ctype == "text/html" else plain).append(text)
        except Exception as exc:  # noqa: BLE001 - one broken part must not lose the rest
            problems.append(f"part {index}: skipped ({type(exc).__name__}: {exc})")
    if plain:
        return _clean_text("\n\n".join(plain)), attachments, rejected
    return _clean_text(html_to_text("\n".join(html))) if html else "", attachments, rejected


def _defects(msg: Message) -> list[str]:
    names = [type(d).__name__ for part in msg.walk() for d in getattr(part, "defects", [])]
    return [f"MIME defect: {n}" for n in dict.fromkeys(names)]


def parse_email(raw: bytes, *, max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES) -> ParsedEmail:
    """Parse raw MIME bytes; raises MalformedEmail when not an email or without a usable From."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    if not raw or not bytes(raw).strip():
        raise MalformedEmail("empty message")
    try:
        return _parse(bytes(raw), max_attachment_bytes)
    except MalformedEmail:
        raise
    except Exception as exc:  # noqa: BLE001 - the contract: ParsedEmail or MalformedEmail, nothing else
        raise MalformedEmail(f"unparseable message: {type(exc).__name__}: {exc}") from exc


def _parse(raw: bytes, limit: int) -> ParsedEmail:
    msg = email.message_from_bytes(raw, policy=policy.default)
    if not list(msg.raw_items()):
        raise MalformedEmail("not a MIME message: no headers")
    problems: list[str] = []
    senders = _addresses(msg, "From", problems) or _addresses(msg, "Sender", problems)
    if not senders:
        raise MalformedEmail("missing From")
    from_name, from_email = senders[0]
    text, attachments, rejected = _body_and_attachments(msg, limit, problems)
    message_ids = _ids(msg, "Message-ID", problems)
    in_reply_to = _ids(msg, "In-Reply-To", problems)
    return ParsedEmail(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_ids(msg, "References", problems),
        from_email=from_email,
        from_name=from_name,
        to=[a for _, a in _addresses(msg, "To", problems)],
        cc=[a for _, a in _addresses(msg, "Cc", problems)],
        subject=" ".join((_text_header(msg, "Subject", problems) or "").split()),
        date=_date(msg, problems),
        text=text,
        attachments=attachments,
        rejected_attachments=rejected,
        problems=list(dict.fromkeys(problems + _defects(msg))),
    )
