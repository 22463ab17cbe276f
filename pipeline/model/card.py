"""A model card: what a saved model is and how it was made, from its manifest.

:func:`model_card` gathers it as plain JSON (what ``cvpipe info MODEL --json`` prints and
``GET /v1/models/<name>`` answers under ``"card"``), :func:`format_card` writes it as text
for people (``cvpipe info MODEL``), and :func:`read_card` does both steps' first half for a
model folder, loading the model so that a damaged one is refused as :func:`load` refuses it.

Nothing here is stored: the card is a view of ``manifest.json`` (its ``provenance``,
``environment`` and ``metrics``, recorded by :mod:`pipeline.model.provenance` and the
trainer), so a model saved before provenance was recorded has a card too, with
``"provenance": null``.
"""
from __future__ import annotations

import shlex
import textwrap
import unicodedata
from pathlib import Path

from pipeline.model.artifacts import read_model
from pipeline.model.codec import ROOT, plain_value

__all__ = ["REPORT_SUFFIX", "format_card", "model_card", "read_card"]

#: Metrics whose key ends so hold scikit-learn's ``classification_report(output_dict=True)``
#: of a split (``test_classification_report``).
REPORT_SUFFIX = "_classification_report"
_WIDTH = 12  # the label column of the text card
_LINE = 100  # where the text card wraps a long list of parameters
_UNPRINTABLE = {"Cc", "Zl", "Zp"}  # control characters, line and paragraph separators
#: Format characters that reorder the text around them (bidi embeddings, overrides, isolates,
#: marks); others, such as the zero-width joiners of some scripts and emoji, are kept.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def model_card(manifest, *, name=None, sha256=None):
    """The card of a model, from its (checked) manifest.

    Parameters
    ----------
    manifest : dict
        As :func:`~pipeline.model.artifacts.read_model` or
        :func:`~pipeline.model.artifacts.read_manifest` return it.
    name : str, optional
        The model's name (its folder's name).
    sha256 : str, optional
        Hex sha256 of ``manifest.json`` (it pins the arrays too); the model's version is
        its first 12 digits.

    Returns
    -------
    dict
        ``{"name", "sha256", "arrays_sha256", "created", "format_version", "classes",
        "input", "steps", "provenance", "metrics", "versions"}``: plain JSON. ``steps`` lists
        every step but the pipeline itself as ``{"name", "class", "params"}`` (parameters
        with plain values; arrays and references to other steps left out); ``provenance``
        is the manifest's (None when it has none); ``versions`` holds cvpipe's and the
        manifest's ``environment``.
    """
    size = manifest["input"].get("size")
    valid_size = isinstance(size, list) and len(size) == 2  # a model that failed to load may have any
    steps = [{"name": s["name"], "class": s["class"], "params": plain_value(s["params"])}
             for s in manifest["steps"] if s["name"] != ROOT]
    card = {
        "name": name,
        "sha256": sha256,
        "arrays_sha256": manifest["arrays"].get("sha256"),
        "created": manifest.get("created"),
        "format_version": manifest["format_version"],
        "classes": [{"index": i, "label": label, "value": value}
                    for i, (label, value) in enumerate(zip(manifest["class_names"], manifest["classes"]))],
        "input": {"height": size[0], "width": size[1], "color_mode": manifest["input"].get("color_mode")}
        if valid_size else None,
        "steps": steps,
        "provenance": _dict(manifest.get("provenance")) or None,
        "metrics": manifest["metrics"],
        "versions": {"cvpipe": manifest.get("cvpipe_version"), **_dict(manifest.get("environment"))},
    }
    if "migrated_from" in manifest:
        card["migrated_from"] = manifest["migrated_from"]
    return card


def _dict(value):
    """``value`` where it is a dict, else an empty one: a hand-edited manifest may hold anything."""
    return value if isinstance(value, dict) else {}


def read_card(path):
    """The card of the model folder ``path``; the model is loaded (every check of
    :func:`~pipeline.model.artifacts.read_model`) and dropped.

    Raises
    ------
    ArtifactError
        A missing, changed, truncated or foreign model folder.
    """
    _, manifest, sha256 = read_model(path)
    return model_card(manifest, name=Path(path).name, sha256=sha256)


# ============================================================================ text
def _value(value):
    """A parameter or config value as a person reads it: strings bare, the rest as JSON would."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _pairs(mapping):
    return " ".join(f"{k}={_value(v)}" for k, v in mapping.items())


def _wrap(text, indent):
    """``text`` as lines that fit in the card after ``indent`` columns (long words unbroken)."""
    return textwrap.wrap(text, max(40, _LINE - _WIDTH - indent), break_long_words=False,
                         break_on_hyphens=False) or [""]


def _section(label, lines):
    """``label`` in the first column of the first line, the other lines indented under it."""
    lines = list(lines) or ["-"]
    return [f"{label:<{_WIDTH}}{lines[0]}", *(" " * _WIDTH + line for line in lines[1:])]


def _dataset_lines(provenance):
    if provenance is None:
        return ["not recorded (the model was saved without provenance)"]
    lines = []
    for role, record in _dict(provenance.get("dataset")).items():
        if not isinstance(record, dict):
            continue
        used = f", {record['n_used']} used" if record.get("n_used") is not None else ""
        lines.append(f"{role:<6}{record.get('name')} ({record.get('split')} split): {record.get('n_images')} "
                     f"images{used}; source {record.get('source')}")
        lines.append(f"{'':<6}{'fingerprint':<12}{record.get('fingerprint')}")
        if record.get("used_fingerprint"):  # under "fingerprint": the subset's
            lines.append(f"{'':<6}{'used rows':<12}{record['used_fingerprint']}")
    return lines


def _report_lines(report, class_names):
    """scikit-learn's ``classification_report`` dict as its text table."""
    rows = [*class_names, "macro avg", "weighted avg"]
    width = max(len(str(r)) for r in rows) + 2
    lines = [f"{'':<{width}}{'precision':>10}{'recall':>10}{'f1-score':>10}{'support':>10}"]
    for row in rows:
        scores = report.get(str(row))
        if not isinstance(scores, dict):
            continue
        cells = "".join(_number(scores.get(k), ".3f") for k in ("precision", "recall", "f1-score"))
        lines.append(f"{str(row):<{width}}{cells}{_number(scores.get('support'), '.0f')}")
    if "accuracy" in report:
        lines.append(f"{'accuracy':<{width}}{'':>20}{_number(report['accuracy'], '.3f')}")
    return lines


def _number(value, spec):
    """A table cell: ``value`` formatted by ``spec``, or "-" where it is not a number."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f"{value:>10{spec}}" if ok else f"{'-':>10}"


def format_card(card):
    """The card as text for people: one labelled section per line group, the per-class
    precision, recall and F1 of each scored split as scikit-learn prints them.

    Parameters
    ----------
    card : dict
        From :func:`model_card`.

    Returns
    -------
    str
        Lines ending in a newline.
    """
    provenance, versions = card.get("provenance"), _dict(card.get("versions"))
    inp = card["input"]
    names = [str(c["label"]) for c in card["classes"]]
    lines = [f"{'model':<{_WIDTH}}{card.get('name') or '-'}"]
    lines += _section("classes", [f"{len(names)}: {', '.join(names)}"])
    lines += _section("input", [f"{inp['height']}x{inp['width']} {inp['color_mode']} (height x width, color mode)"
                                if inp else "-"])
    step_width = max((len(s["name"]) for s in card["steps"]), default=0) + 2
    lines += _section("pipeline", [line for s in card["steps"] for line in (
        f"{s['name']:<{step_width}}{s['class']}",
        *(" " * (step_width + 2) + part for part in (_wrap(_pairs(s["params"]), step_width + 2)
                                                    if s["params"] else [])))])
    lines += _section("dataset", _dataset_lines(provenance))
    if provenance is not None:
        config = dict(_dict(provenance.get("config")))
        if any(s["name"] == "classifier" and s["params"] for s in card["steps"]):
            config.pop("classifier_params", None)  # the pipeline's classifier step shows them
        lines += _section("config", [line for k, v in config.items()
                                     for line in _wrap(f"{k}: {_value(v)}", 0)])
        if _dict(provenance.get("search")):
            lines += _section("search", [line for k, v in provenance["search"].items()
                                         for line in _wrap(f"{k}: {_value(v)}", 0)])
        command = provenance.get("command")
        lines += _section("command", [shlex.join(map(str, command)) if isinstance(command, list) and command
                                      else "none (trained from Python)"])
    metrics = _dict(card.get("metrics"))
    lines += _section("metrics", _wrap(_pairs({k: v for k, v in metrics.items() if not k.endswith(REPORT_SUFFIX)}), 0))
    for key, report in metrics.items():
        if key.endswith(REPORT_SUFFIX) and isinstance(report, dict):
            lines += _section(f"per class ({key[:-len(REPORT_SUFFIX)]})", [""])
            lines += ["  " + line for line in _report_lines(report, names)]
    lines += _section("versions", _wrap(_pairs({k: v for k, v in versions.items() if v is not None}), 0))
    created = card.get("created") or "-"
    lines += _section("created", [f"{created} (format_version {card['format_version']}"
                                  + (f", migrated from {card['migrated_from']})" if "migrated_from" in card else ")")])
    lines += _section("sha256", [f"manifest.json {card.get('sha256') or '-'}",
                                 f"arrays.npz    {card.get('arrays_sha256') or '-'}"])
    return "\n".join(_printable(line).rstrip() for line in lines) + "\n"


def _printable(line):
    """``line`` with control and format characters (a newline, an ANSI escape, a bidi override)
    written as escapes: a hand-edited manifest's strings reach a terminal, where they could
    break the layout, rewrite what is shown, set the title or the clipboard."""
    return "".join(ascii(ch)[1:-1] if ch in _BIDI or unicodedata.category(ch) in _UNPRINTABLE else ch
                   for ch in line)
