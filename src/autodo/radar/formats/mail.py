"""Support mail: an mbox file or a single .eml message."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import parseaddr

from autodo.errors import InvalidInput
from autodo.radar.formats._common import Collector, Draft, html_to_text
from autodo.radar.items import Parsed

LABEL = "an mbox file or .eml message"
# An mbox separator is a "From " line at the start of the file or after a blank line.
_SEPARATOR = re.compile(rb"(?:\A|(?<=\n\n)|(?<=\r\n\r\n))From [^\n]*\n")
_ESCAPED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_SIGNATURE = re.compile(r"\n-- ?\n.*", re.DOTALL)
_ATTRIBUTION = re.compile(r"^On .{1,200} wrote:$")  # the line that introduces a quote
HEADERS = ("Message-ID", "From", "Subject", "Date")


def parse_mbox(data: bytes) -> Parsed:
    """Messages with their text/plain body (or the HTML one, as text), threaded by References."""
    if not data.strip():
        raise InvalidInput(f"the file is empty; expected {LABEL}")
    messages = [_message(chunk) for chunk in _chunks(data)]
    if not any(name in message for message in messages for name in HEADERS):
        raise InvalidInput(f"no mail headers (Message-ID, From, Subject, Date) found; is this {LABEL}?")
    collector = Collector("mbox")
    for message in messages:
        collector.add(_draft(message))
    return collector.parsed


def _chunks(data: bytes) -> list[bytes]:
    if not data.startswith(b"From "):
        return [data]  # a single .eml
    return [_ESCAPED_FROM.sub(rb"\1", chunk) for chunk in _SEPARATOR.split(data) if chunk.strip()]


def _message(chunk: bytes) -> EmailMessage:
    message = message_from_bytes(chunk, policy=policy.default)
    assert isinstance(message, EmailMessage)  # the default policy always makes EmailMessage
    return message


def _draft(message: EmailMessage) -> Draft:
    message_id = _first_id(message.get("Message-ID"))
    return Draft(
        source_id=message_id,
        title=str(message.get("Subject") or ""),
        body=_without_quotes(_body(message)),
        at=str(message.get("Date") or ""),
        author=parseaddr(str(message.get("From") or ""))[1],
        thread=_first_id(message.get("References")) or _first_id(message.get("In-Reply-To")) or message_id,
    )


def _first_id(header: object) -> str | None:
    """The first ``<id>`` of a header: the thread's root, for References."""
    match = _MESSAGE_ID.search(str(header)) if header is not None else None
    return match[1] if match else None


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = _decoded(part)
    return html_to_text(text) if part.get_content_subtype() == "html" else text


def _decoded(part: Message) -> str:
    """The part's text, from quoted-printable or base64, in its declared charset when Python knows it."""
    payload = part.get_payload(decode=True)
    raw = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, errors="replace")
    except LookupError:  # a charset name Python does not know
        return raw.decode("utf-8", errors="replace")


def _without_quotes(text: str) -> str:
    # Replies quote the mail before them; kept, the first complaint would count once per reply.
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(">")]
    lines = [line for line in lines if not _ATTRIBUTION.match(line.strip())]
    return _SIGNATURE.sub("", "\n".join(lines))
