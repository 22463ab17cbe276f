"""10,000 mutated request bodies, seeded, through the app: never a 5xx.

Each body starts from a valid request to /predict (multipart with one or two parts,
a raw image/png body, or JSON instances) and is mutated: bytes flipped, inserted or
removed, lines duplicated or dropped, the boundary or a header garbled, the
Content-Disposition's name or filename removed, the body cut short. Every answer must be
a 2xx or a JSON 4xx error; the first 5xx fails with the body that caused it.
"""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

N_BODIES = 10_000


def _seeds(encode):
    png = encode(np.full((8, 8), 90, np.uint8))
    boundary = b"fuzzb0undary"
    part = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + png + b"\r\n")
    multipart_ctype = "multipart/form-data; boundary=fuzzb0undary"
    return [
        (part + b"--" + boundary + b"--\r\n", multipart_ctype),
        (part + part + b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"top_k\"\r\n\r\n3\r\n--"
         + boundary + b"--\r\n", multipart_ctype),
        (png, "image/png"),
        (json.dumps({"instances": [{"b64": base64.b64encode(png).decode()}], "top_k": 2}).encode(),
         "application/json"),
    ]


def _mutate(body, rng):
    data = bytearray(body)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 8))
        at = int(rng.integers(0, max(1, len(data))))
        if kind == 0 and data:  # flip a byte
            data[at % len(data)] ^= int(rng.integers(1, 256))
        elif kind == 1:  # insert random bytes
            data[at:at] = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
        elif kind == 2:  # remove a run
            del data[at:at + int(rng.integers(1, 32))]
        elif kind == 3:  # cut short
            del data[at:]
        elif kind == 4:  # drop the name or the filename of a part
            for token in (b" name=\"image\";", b" filename=\"a.png\"", b"name=\"top_k\""):
                if rng.random() < 0.5:
                    data = bytearray(bytes(data).replace(token, b"", 1))
        elif kind == 5:  # garble a header line
            lines = bytes(data).split(b"\r\n")
            i = int(rng.integers(0, len(lines)))
            lines[i] = lines[i][::-1]
            data = bytearray(b"\r\n".join(lines))
        elif kind == 6:  # duplicate or drop a line
            lines = bytes(data).split(b"\r\n")
            i = int(rng.integers(0, len(lines)))
            lines = lines[:i] + ([lines[i]] * 2 if rng.random() < 0.5 else []) + lines[i + 1:]
            data = bytearray(b"\r\n".join(lines))
        else:  # a JSON value swapped for another type
            data = bytearray(bytes(data).replace(b"\"top_k\": 2", b"\"top_k\": [null]", 1).replace(
                b"[{", b"[[{", 1) if rng.random() < 0.5 else data)
    return bytes(data)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ten_thousand_mutated_bodies_never_get_a_server_error(make_app, models_source, encode):
    client = make_app(models_source).test_client()
    rng = np.random.default_rng(2026)
    seeds = _seeds(encode)
    statuses = {}
    for i in range(N_BODIES):
        body, ctype = seeds[i % len(seeds)]
        if rng.random() < 0.1:  # the content type mutated too
            ctype = ctype.replace("boundary=fuzzb0undary", "boundary=") if rng.random() < 0.5 else ctype[::-1]
        mutated = _mutate(body, rng)
        path = "/predict" if i % 3 else "/v1/models/default/predict?top_k=2"
        response = client.post(path, data=mutated, content_type=ctype)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (i, ctype, mutated[:400], response.get_data()[:300])
        if response.status_code >= 400:
            assert set(response.get_json()["error"]) == {"code", "message"}
    assert sum(statuses.values()) == N_BODIES
    assert statuses.get(200, 0) > 100 and sum(n for s, n in statuses.items() if s >= 400) > 1000, statuses


def test_a_part_without_a_name_and_no_image_is_a_400_that_says_so(make_app, models_source, api_error):
    """werkzeug files such a part under None; the message sorted it beside str names: a 500."""
    body = (b"--b\r\nContent-Disposition: form-data; filename=\"a.png\"\r\n\r\nxx\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"top_k\"\r\n\r\n3\r\n--b--\r\n")
    client = make_app(models_source).test_client()
    response = client.post("/predict", data=b"preamble\r\n" + body, content_type="multipart/form-data; boundary=b")
    assert "(a part without a name)" in api_error(response, 400, "missing_image")
