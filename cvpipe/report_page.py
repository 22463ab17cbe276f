"""The ``index.html`` of a report folder: the model card, the evaluation and every plot.

One self-contained page: inline CSS, no script, images by relative path (the folder can be
moved, zipped or opened from ``file://``), nothing fetched from anywhere else. Every piece
of text from the model or the data (class names, paths, parameters) is HTML-escaped.
"""
from __future__ import annotations

import html
import logging
import math
import os
from pathlib import Path
from urllib.parse import quote

from pipeline.model.card import REPORT_SUFFIX, model_card

logger = logging.getLogger(__name__)

INDEX = "index.html"

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f24; margin: 0 auto;
       max-width: 1060px; padding: 0 20px 40px; }
h1 { font-size: 1.6em; margin: 24px 0 4px; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
.sub { color: #57606a; margin: 0 0 12px; } code { font-size: 0.92em; word-break: break-all; }
table { border-collapse: collapse; margin: 6px 0 12px; } td, th { border: 1px solid #d0d7de; padding: 3px 8px;
        text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: #f6f8fa; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { white-space: nowrap; } code.class { white-space: nowrap; } table.kv table { margin: 0; }
figure { margin: 18px 0 28px; } figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { color: #57606a; margin-top: 4px; } nav a { margin-right: 14px; }
"""


def _e(value):
    return html.escape(str(value), quote=True)


def _number(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


def _inline(value):
    """A JSON value on one line, as the text card writes it: ``key=value`` pairs, lists in brackets."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_inline(v)}" for k, v in value.items()) if value else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return "null" if value is None else _number(value)


def _value_html(value, depth=0):
    """Any JSON value as HTML: a mapping as a key/value table (one level of nesting; deeper
    mappings on one line), anything else on one line; all of it escaped."""
    if isinstance(value, dict) and value and depth < 2:
        rows = "".join(f"<tr><th>{_e(k)}</th><td>{_value_html(v, depth + 1)}</td></tr>" for k, v in value.items())
        return f'<table class="kv"><tbody>{rows}</tbody></table>'
    if value is None:
        return "<em>null</em>"
    return _e(_inline(value))


def _report_table(report, class_names):
    """scikit-learn's ``classification_report(output_dict=True)`` as a table, its rows in the
    order of ``class_names`` then the averages (rows it lacks are left out)."""
    names = [str(n) for n in class_names]
    rows = [r for r in [*names, *(k for k in report if k not in names)] if isinstance(report.get(r), dict)]
    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
    body = []
    for row in rows:
        cells = report[row]
        nums = "".join(f'<td class="num">{_e(f"{cells[k]:.3f}" if isinstance(cells.get(k), (int, float)) else "–")}'
                       "</td>" for k in ("precision", "recall", "f1-score"))
        support = cells.get("support")
        body.append(f"<tr><th>{_e(row)}</th>{nums}<td class=\"num\">"
                    f"{_e(f'{support:.0f}' if isinstance(support, (int, float)) else '–')}</td></tr>")
    if isinstance(report.get("accuracy"), (int, float)):
        body.append(f'<tr><th>accuracy</th><td></td><td></td><td class="num">{report["accuracy"]:.3f}</td>'
                    "<td></td></tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _card_html(card):
    names = [c["label"] for c in card.get("classes") or []]
    parts = ['<table class="kv"><tbody>']

    def row(label, content):
        parts.append(f"<tr><th>{_e(label)}</th><td>{content}</td></tr>")

    row("classes", f"{len(names)}: " + _e(", ".join(names)))
    inp = card.get("input") or {}
    row("input", _e(f"{inp.get('height')}x{inp.get('width')} pixels (height x width), color mode "
                    f"{inp.get('color_mode')}"))
    steps = card.get("steps") or []
    row("pipeline", "<table><tbody>" + "".join(
        f"<tr><th>{_e(s.get('name'))}</th><td><code class=\"class\">{_e(s.get('class'))}</code></td>"
        f"<td>{_e(_inline(s.get('params') or {}))}</td></tr>" for s in steps) + "</tbody></table>")
    provenance = card.get("provenance")
    row("provenance", _value_html(provenance) if provenance is not None
        else "<em>not recorded (the model was saved without provenance)</em>")
    metrics = card.get("metrics") or {}
    row("metrics", _value_html({k: v for k, v in metrics.items() if not k.endswith(REPORT_SUFFIX)}))
    for key, value in metrics.items():
        if key.endswith(REPORT_SUFFIX) and isinstance(value, dict):
            row(f"per class ({key[:-len(REPORT_SUFFIX)]}, at training)", _report_table(value, names))
    known = {"name", "classes", "input", "steps", "provenance", "metrics"}
    for key, value in card.items():
        if key not in known and value is not None:
            row(key, _value_html(value))
    parts.append("</tbody></table>")
    return "".join(parts)


def _evaluation_html(evaluation, class_names):
    ev = evaluation
    line = (f"Accuracy <strong>{ev['accuracy']:.4f}</strong> on {ev['n_images']} images of "
            f"{_e(ev['dataset'])} ({_e(ev['split'])} split, from <code>{_e(ev.get('source') or '–')}</code>)")
    if ev.get("n_unreadable"):
        line += f"; {ev['n_unreadable']} images could not be read and are left out"
    if ev.get("ece") is not None:
        line += f"; expected calibration error <strong>{ev['ece']:.4f}</strong> ({ev['n_bins']} bins)"
    elif ev.get("score_kind") == "decision":
        line += "; the classifier gives decision scores, not probabilities: no reliability diagram"
    parts = [f"<p>{line}.</p>", "<h3>Classification report</h3>",
             _report_table(ev["classification_report"], class_names)]
    files = ev.get("files") or []
    if files:
        parts.append("<p>As files: " + ", ".join(f'<a href="{_e(quote(f))}">{_e(f)}</a>' for f in files) + "</p>")
    wrong = ev.get("misclassified") or []
    if wrong:
        parts.append(f"<details><summary>The {len(wrong)} most confidently misclassified images, as a table "
                     "(the gallery is under Plots)</summary>")
        parts.append("<table><thead><tr><th>#</th><th>image</th><th>true</th><th>predicted</th>"
                     f"<th>{_e('probability' if ev.get('score_kind') == 'probability' else 'score')}</th></tr>"
                     "</thead><tbody>")
        for i, w in enumerate(wrong):
            parts.append(f'<tr><td class="num">{i + 1}</td><td><code>{_e(w["image"])}</code></td>'
                         f'<td>{_e(w["true"])}</td><td>{_e(w["predicted"])}</td>'
                         f'<td class="num">{w["score"]:.6g}</td></tr>')
        parts.append("</tbody></table></details>")
    return "".join(parts)


def _src(path, folder):
    """``path`` relative to ``folder``, URL-quoted (a plot is always written inside it)."""
    return quote(Path(os.path.relpath(Path(path), folder)).as_posix())


def write_index(folder, manifest, plots, *, name=None, sha256=None, evaluation=None):
    """Write ``folder/index.html``: the model card, the evaluation and every plot.

    Parameters
    ----------
    folder : str or Path
        The report folder; the plots must lie in it.
    manifest : dict
        The model's checked manifest (:func:`pipeline.model.read_model`); fields it lacks
        (an older model has no ``provenance``) are said to be absent.
    plots : sequence of (path, str)
        Each PNG and its caption, in the order shown.
    name : str, optional
        The model's name.
    sha256 : str, optional
        The manifest's sha256 (the model's version).
    evaluation : dict, optional
        ``{"dataset", "split", "accuracy", "n_images", "n_unreadable", "classification_report",
        "source", "score_kind", "ece", "n_bins", "misclassified": [{"image", "true", "predicted",
        "score"}], "files": [names]}`` as :func:`cvpipe.commands.report` computes it.

    Returns
    -------
    Path
    """
    folder = Path(folder)
    card = model_card(manifest, name=name, sha256=sha256)
    names = [c["label"] for c in card["classes"]]
    title = f"Model report: {name}" if name else "Model report"
    version = f" · version {sha256[:12]}" if sha256 else ""
    sections = [("card", "Model card", _card_html(card))]
    if evaluation is not None:
        sections.append(("evaluation", f"Evaluation: {evaluation['dataset']} ({evaluation['split']})",
                         _evaluation_html(evaluation, names)))
    figures = "".join(f'<figure><img src="{_e(_src(p, folder))}" alt="{_e(caption)}">'
                      f"<figcaption>{_e(caption)}</figcaption></figure>" for p, caption in plots)
    sections.append(("plots", "Plots", figures or "<p><em>no plot applies to this model</em></p>"))
    nav = "".join(f'<a href="#{anchor}">{_e(heading)}</a>' for anchor, heading, _ in sections)
    body = "".join(f'<section id="{anchor}"><h2>{_e(heading)}</h2>{content}</section>'
                   for anchor, heading, content in sections)
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="referrer" content="no-referrer"><title>{_e(title)}</title><style>{_CSS}</style></head>\n'
            f'<body><h1>{_e(title)}</h1><p class="sub">created {_e(card.get("created") or "–")}{_e(version)}</p>'
            f"<nav>{nav}</nav>{body}</body></html>\n")
    path = folder / INDEX
    path.write_text(page, encoding="utf-8")
    logger.info("wrote %s", path)
    return path
