"""Faults injected into the workers of a local engine (spawned processes import this
module by name: a test puts its folder on ``sys.path`` first)."""
from pipeline.jobs.chunk import extract_chunk


def fails_on_chunk_two(task):
    if task["index"] == 2:
        return {"index": 2, "rows": task["rows"], "error": "ValueError: simulated bad chunk"}
    return extract_chunk(task)
