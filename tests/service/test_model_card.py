"""`GET /v1/models/<name>` answers the model card (service/registry.py), as `cvpipe info NAME
--json` prints it, in the shape the OpenAPI document gives (service/openapi.py)."""
from __future__ import annotations

import jsonschema
import pytest

from pipeline.data import load_dataset
from pipeline.model.card import read_card
from service.openapi import openapi_document


def _check_against_document(body, schema="ModelInfo"):
    """``body`` against the document's schema of that name (its ``$ref`` resolved in the document)."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": openapi_document()["components"]}
    jsonschema.Draft202012Validator(root).validate(body)


def test_the_answer_holds_the_card_that_cvpipe_info_prints(client, models_source):
    body = client.get("/v1/models/default").get_json()
    assert body["card"] == read_card(models_source / "default")
    _check_against_document(body)
    provenance = body["card"]["provenance"]
    assert provenance["dataset"]["train"]["fingerprint"] == load_dataset("digits", "train").fingerprint()
    assert provenance["config"]["classifier"] == "softmax:n_epochs=5"
    assert provenance["command"] is None  # trained from Python
    assert body["card"]["sha256"][:12] == body["version"]
    assert {"precision", "recall", "f1-score", "support"} <= set(
        body["card"]["metrics"]["test_classification_report"]["macro avg"])


def test_a_model_saved_without_provenance_has_a_card_that_says_so(client):
    body = client.get("/v1/models/rgb").get_json()
    assert body["card"]["provenance"] is None
    assert [c["label"] for c in body["card"]["classes"]] == ["noise", "red", "blue"]
    _check_against_document(body)


def test_a_model_that_failed_to_load_still_has_its_manifests_card(client):
    body = client.get("/v1/models/broken").get_json()
    assert body["status"] == "error" and body["card"]["sha256"] is None
    assert body["card"]["provenance"]["dataset"]["train"]["name"] == "digits"
    _check_against_document(body)


def test_the_document_refuses_a_card_of_the_wrong_shape(client):
    """The schema check above can fail: a card whose provenance is a list does not conform."""
    body = client.get("/v1/models/default").get_json()
    body["card"]["provenance"] = ["not", "an", "object"]
    with pytest.raises(jsonschema.ValidationError):
        _check_against_document(body)
