"""Whether the bytes received on a connection hold a whole HTTP/1.1 request yet.

:class:`service.gunicorn_worker.BalancedThreadWorker` reads every request whole in its
event loop, without blocking, before a thread of the worker sees it (see there for why);
this module only says when it is whole. It is not a parser: gunicorn parses the request
afterwards, from the same bytes, and refuses what is malformed (a bad chunk size, a bad
Content-Length) with its 400. So where the bytes are malformed, this module answers
"whole" at once: gunicorn's parser then answers without waiting for anything more.

Imported by the gunicorn master (with the worker class): the standard library only.
"""
from __future__ import annotations

#: Most bytes of a request line and its headers (gunicorn's own limits are smaller:
#: a line of 8190 bytes, 100 fields of 8190 bytes); more is refused (431).
MAX_HEAD_BYTES = 64 * 1024
#: Most bytes of a chunk-size line (its extensions included).
MAX_CHUNK_LINE = 1024

INCOMPLETE = "incomplete"  # wait for more bytes
WHOLE = "whole"  # hand the bytes to gunicorn (a whole request, or malformed ones it refuses)
HEAD_TOO_LARGE = "head too large"  # headers over MAX_HEAD_BYTES
BODY_TOO_LARGE = "body too large"  # a chunked body over the limit (Content-Length is the app's to refuse)


def request_state(buf, max_body):
    """What ``buf`` (the bytes received so far, from a request's first byte) holds.

    Parameters
    ----------
    buf : bytes or bytearray
    max_body : int
        The app's body limit (``CVPIPE_MAX_BYTES``). A Content-Length over it is handed on
        at once (the app answers 413 without reading the body); a chunked body that grows
        over it is ``BODY_TOO_LARGE``.

    Returns
    -------
    str
        ``INCOMPLETE``, ``WHOLE``, ``HEAD_TOO_LARGE`` or ``BODY_TOO_LARGE``.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return INCOMPLETE if len(buf) <= MAX_HEAD_BYTES else HEAD_TOO_LARGE
    if end > MAX_HEAD_BYTES:
        return HEAD_TOO_LARGE
    lengths, chunked = [], False
    for line in bytes(buf[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            lengths.append(value.strip())
        elif name == b"transfer-encoding":
            chunked = chunked or b"chunked" in value.lower()
    start = end + 4
    if chunked:
        return _chunked_state(buf, start, max_body)
    if not lengths:
        return WHOLE  # no body
    if len(set(lengths)) != 1 or not lengths[0].isdigit():
        return WHOLE  # malformed: gunicorn's 400
    length = int(lengths[0])
    if length > max_body:
        return WHOLE  # the app's 413, without reading the body
    return WHOLE if len(buf) - start >= length else INCOMPLETE


def _chunked_state(buf, pos, max_body):
    body = 0
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return INCOMPLETE if len(buf) - pos <= MAX_CHUNK_LINE else WHOLE
        size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return WHOLE  # a malformed chunk size: gunicorn's 400
        if size < 0 or not size_text or size_text.startswith((b"-", b"+", b"0x", b"0X")):
            return WHOLE
        if size == 0:  # the last chunk, then trailers up to an empty line
            rest = line_end + 2
            if buf[rest:rest + 2] == b"\r\n" or buf.find(b"\r\n\r\n", rest - 2) >= 0:
                return WHOLE
            return INCOMPLETE if len(buf) - rest <= MAX_HEAD_BYTES else HEAD_TOO_LARGE
        body += size
        if body > max_body:
            return BODY_TOO_LARGE
        pos = line_end + 2 + size + 2
        if pos > len(buf):
            return INCOMPLETE
