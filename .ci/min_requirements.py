"""Print the declared minimum versions of cvpipe's runtime dependencies as pins (``name==X``).

``pyproject.toml`` says ``numpy>=1.25``; CI installs ``numpy==1.25`` and runs the smoke
tests on it, so a floor that is no longer true fails CI instead of a user's install.
"""
import re
import sys
from pathlib import Path

import tomllib

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
for requirement in project["dependencies"]:
    spec, _, marker = requirement.partition(";")
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\[\]-]+)\s*>=\s*([0-9][0-9.]*)\s*", spec)
    if match is None:
        sys.exit(f"{requirement!r}: expected 'name>=version' (every runtime dependency declares its floor)")
    print(f"{match[1]}=={match[2]}" + (f" ;{marker}" if marker else ""))
