"""The pieces of ``argparse`` the command line is built from (:mod:`cvpipe.cli`).

- :class:`Parser`: every parser of ``cvpipe`` and of its sub-commands. A usage error
  raises :class:`UsageError` (one line, ``train: argument --limit: expected an integer
  >= 1, got '0'``) instead of printing the usage and exiting, so ``cvpipe.cli.main``
  says it the one way it says every error; each sub-command's parser also takes
  ``-q``/``-v`` after its name, shows its ``help`` as its description and an example
  (:data:`EXAMPLES`) as its epilog.
- :class:`HelpFormatter`: each option's help ends with its default, as
  ``argparse.ArgumentDefaultsHelpFormatter`` does, but an option that is required, a
  flag, or has no default says nothing, and descriptions and epilogs keep their lines.
- Option types that refuse a bad value while parsing: :func:`int_type` (one helper for
  every bounded integer), :func:`positive_float`, :func:`int_list`, :func:`choice_list`.
"""
from __future__ import annotations

import argparse

__all__ = ["EXAMPLES", "HelpFormatter", "Parser", "UsageError", "choice_list", "int_list", "int_type",
           "positive_float"]

#: ``"sub command" -> example lines``: the epilog of each sub-command's ``--help``.
EXAMPLES = {
    "data": "cvpipe data list",
    "data fetch": "cvpipe data fetch fashion-mnist",
    "data list": "cvpipe data list",
    "extract": "cvpipe extract --dataset digits --features hog:pixels_per_cell=4x4 --out /tmp/digits-hog",
    "cv": "cvpipe cv knn --dataset digits --limit 500 --k 1,3,5",
    "cv knn": "cvpipe cv knn --dataset digits --limit 500 --k 1,3,5 --metric l1,l2 --folds 5",
    "search": ("cvpipe search --dataset digits --features raw --classifier softmax \\\n"
               "    --space 'learning_rate=log:1e-4:1e-1,reg=log:1e-6:1e-2' --trials 5"),
    "train": ("cvpipe train --dataset digits --features raw --classifier softmax:n_epochs=40 --out /tmp/digits\n"
              "  cvpipe train --config configs/fashion-mnist-best.yaml --out models/fmnist-best"),
    "evaluate": "cvpipe evaluate models/default --dataset fashion-mnist --split test",
    "predict": "cvpipe predict models/default runs/demo/sample.png --top-k 3",
    "report": "cvpipe report models/default --dataset fashion-mnist --out /tmp/default-report",
    "info": "cvpipe info models/default",
    "serve": ("cvpipe serve --models models --port 8000 --workers 2\n"
              "  cvpipe serve --config service.yaml --port 9000   # a flag overrides the file"),
    "demo": "cvpipe demo --no-serve",
}


class UsageError(Exception):
    """A command line that ``argparse`` refused; the message is one line."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help with each option's default (see the module docstring)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("%(default)" in text or "default:" in text or action.required or not action.option_strings
                or action.default is False or action.default == argparse.SUPPRESS or action.nargs == 0):
            return text
        return text + (" (default: none)" if action.default is None else " (default: %(default)s)")


class _SubParsers(argparse._SubParsersAction):
    """Sub-command parsers show their ``help`` as their description and their example as epilog."""

    def add_parser(self, name, **kwargs):
        if "help" in kwargs:
            kwargs.setdefault("description", kwargs["help"])
        command = " ".join(self._prog_prefix.split()[1:] + [name])
        if command in EXAMPLES and "example" not in (kwargs.get("description") or ""):
            kwargs.setdefault("epilog", "example:\n  " + EXAMPLES[command])
        kwargs.setdefault("common_options", True)
        return super().add_parser(name, **kwargs)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises :class:`UsageError` (see the module docstring).

    Parameters
    ----------
    common_options : bool
        Add ``-q``/``-v`` defaulting to "not given" (``argparse.SUPPRESS``), so that a
        sub-command's parser does not reset what the main parser read before it.
    """

    def __init__(self, *args, common_options=False, formatter_class=HelpFormatter, **kwargs):
        if formatter_class in (argparse.HelpFormatter, argparse.RawDescriptionHelpFormatter):
            formatter_class = HelpFormatter  # one look for every sub-command, whoever adds it
        super().__init__(*args, formatter_class=formatter_class, **kwargs)
        self.register("action", "parsers", _SubParsers)
        if common_options:
            add_common_options(self, default=argparse.SUPPRESS)

    def error(self, message):
        command = " ".join(self.prog.split()[1:])
        hint = f" (see {self.prog} --help)"
        raise UsageError(" ".join(f"{command + ': ' if command else ''}{message}{hint}".split()))


def add_common_options(parser, default=False):
    """``-v``/``--verbose`` and ``-q``/``--quiet``."""
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="warnings only, no progress bars (bars are also off when stderr is not a terminal)")


def int_type(minimum=1, maximum=None, *, also=(), what=None):
    """An argparse ``type``: an integer in ``[minimum, maximum]`` (or one of ``also``).

    Parameters
    ----------
    minimum, maximum : int or None
    also : tuple of int
        Values accepted outside the range (``-1`` for "all cores").
    what : str, optional
        How the message names what is expected (default: from the bounds).

    Returns
    -------
    callable
        ``str -> int``, raising ``argparse.ArgumentTypeError`` that says what was expected and what arrived.
    """
    if what is None:
        what = "an integer" + (f" >= {minimum}" if minimum is not None and maximum is None else "")
        if maximum is not None:
            what += f" in {minimum}..{maximum}"
        if also:
            what += f" (or {', '.join(map(str, also))})"

    def parse(text):
        try:
            value = int(text, 10)
        except (TypeError, ValueError):
            value = None
        if value is None or (value not in also and ((minimum is not None and value < minimum)
                                                    or (maximum is not None and value > maximum))):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def positive_float(text):
    """An argparse ``type``: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def int_list(minimum=1):
    """An argparse ``type``: comma-separated integers >= ``minimum`` (``1,3,5``), as a list."""
    def parse(text):
        try:
            values = [int(v, 10) for v in text.split(",") if v.strip()]
        except ValueError:
            values = []
        if not values or min(values) < minimum:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers >= {minimum} such as 1,3,5, "
                                             f"got {text!r}")
        return values

    parse.__name__ = "integer list"
    return parse


def choice_list(choices):
    """An argparse ``type``: comma-separated values from ``choices``, as a tuple."""
    def parse(text):
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        if not values or not set(values) <= set(choices):
            raise argparse.ArgumentTypeError(f"expected comma-separated values of {', '.join(choices)}, "
                                             f"got {text!r}")
        return values

    parse.__name__ = "list"
    return parse
