"""Stop a batch job's coordinator as if it were killed, after some chunks have finished."""
import pipeline.jobs.extract as extract


def stop_after(monkeypatch, n_results):
    """Make :func:`run_extraction` raise KeyboardInterrupt after ``n_results`` finished chunks
    (the finished chunks and their records stay where the workers wrote them)."""
    real = extract.run_tasks

    def run_tasks(engine, function, tasks, **kwargs):
        for i, result in enumerate(real(engine, function, list(tasks), **kwargs)):
            if i == n_results:
                raise KeyboardInterrupt
            yield result

    monkeypatch.setattr(extract, "run_tasks", run_tasks)
