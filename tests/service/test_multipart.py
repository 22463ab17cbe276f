"""Multipart bodies: the short parser gives what werkzeug's gives, or declines; and bodies
of every shape clients send (and some they should not) are answered by what werkzeug's
parser finds in them, never with a 5xx."""
import io

import pytest
from werkzeug.formparser import parse_form_data
from werkzeug.test import EnvironBuilder

from service.decode import FIELD, parse_simple_multipart

B = "cvpipe-test-boundary"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"\r\n--not-the-boundary\r\n"


def _part(name, content, filename=None, ctype="image/png", extra=b""):
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    head = f"Content-Disposition: {disposition}\r\n".encode()
    if filename is not None:
        head += f"Content-Type: {ctype}\r\n".encode()
    return f"--{B}\r\n".encode() + head + extra + b"\r\n" + content + b"\r\n"


END = f"--{B}--\r\n".encode()


def _body(*parts, end=END):
    return b"".join(parts) + end


def _werkzeug(body):
    env = EnvironBuilder(method="POST", data=body, content_type=f"multipart/form-data; boundary={B}").get_environ()
    env["wsgi.input"] = io.BytesIO(body)
    _, form, files = parse_form_data(env)
    return ([f.read() for f in files.getlist(FIELD)], {k: v for k, v in form.items()},
            {k for k in files if k != FIELD})


SIMPLE = {
    "one image": _body(_part("image", PNG, "a.png")),
    "two images and top_k": _body(_part("image", PNG, "a.png"), _part("top_k", b"3"), _part("image", b"xyz", "b.gif")),
    "empty filename": _body(_part("image", b"", "")),
    "other file field": _body(_part("file", PNG, "a.png")),
    "text field only": _body(_part("image", b"not a file")),
    "repeated text field": _body(_part("top_k", b"3"), _part("top_k", b"4"), _part("image", PNG, "x.png")),
    "semicolon in filename": _body(_part("image", PNG, "a;b.png")),
    "no trailing newline": _body(_part("image", PNG, "a.png"), end=f"--{B}--".encode()),
    "epilogue": _body(_part("image", PNG, "a.png"), end=f"--{B}--\r\nepilogue".encode()),
    "extra header": _body(_part("image", PNG, "a.png", extra=b"X-Extra: 1\r\n")),
}
DECLINED = {
    "preamble": b"preamble\r\n" + _body(_part("image", PNG, "a.png")),
    "no final boundary": _body(_part("image", PNG, "a.png"), end=b""),
    "escaped quote": _body(_part('a\\"b', PNG, "a.png")),
    "utf-8 filename": _body(_part("image", PNG, "\u00e9.png")),
    "encoded filename": _body(f'--{B}\r\nContent-Disposition: form-data; name="image"; '
                              f"filename*=UTF-8''a.png\r\n\r\n".encode() + PNG + b"\r\n"),
    "non-ascii text field": _body(_part("note", "\u00e9t\u00e9".encode())),
    "long text field": _body(_part("note", b"x" * 5000)),
    "no disposition": _body(f"--{B}\r\nContent-Type: image/png\r\n\r\n".encode() + PNG + b"\r\n"),
    "header without colon": _body(_part("image", PNG, "a.png", extra=b"garbage\r\n")),
    "no blank line": f"--{B}\r\nContent-Disposition: form-data; name=\"image\"".encode(),
    "empty": b"",
}


@pytest.mark.parametrize("case", SIMPLE)
def test_simple_bodies_parse_as_werkzeug_parses_them(case):
    body = SIMPLE[case]
    files, params, others = parse_simple_multipart(body, B)
    assert (files, params, others) == _werkzeug(body)


@pytest.mark.parametrize("case", DECLINED)
def test_other_bodies_are_left_to_werkzeug(case):
    assert parse_simple_multipart(DECLINED[case], B) is None


def test_no_or_wrong_boundary_is_declined():
    body = SIMPLE["one image"]
    assert parse_simple_multipart(body, None) is None
    assert parse_simple_multipart(body, "other") is None


@pytest.fixture(scope="module")
def png(digits_test):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(digits_test.images[0]).save(buf, format="PNG")
    return buf.getvalue()


def _post(client, body):
    return client.post("/predict", data=body, content_type=f"multipart/form-data; boundary={B}")


@pytest.mark.parametrize("case", {**SIMPLE, **DECLINED})
def test_every_body_is_parsed_by_werkzeug_and_answered_without_a_5xx(client, case, png):
    """The service reads forms with werkzeug's parser alone: the files it answers about are
    the ones werkzeug finds, and a body it cannot use is a 4xx JSON error."""
    body = {**SIMPLE, **DECLINED}[case].replace(PNG, png)
    response = _post(client, body)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code == 200:
        files = _werkzeug(body)[0]
        assert len(response.get_json()["predictions"]) == len(files) and files
    else:
        assert response.mimetype == "application/json" and "error" in response.get_json()
