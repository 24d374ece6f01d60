"""The job queue and the progress throttle: plain data, no Qt."""

from __future__ import annotations

from ostaf.progress import Progress
from ostaf_desktop.jobs import Job, JobKind, JobQueue, JobState
from ostaf_desktop.progress_throttle import ProgressThrottle


def test_jobs_run_in_order_with_explicit_states() -> None:
    queue = JobQueue()
    first, second = Job(JobKind.LOAD_MODEL, "a"), Job(JobKind.TUNE, "b")
    queue.submit(first)
    queue.submit(second)
    assert queue.take(0) is first and first.state is JobState.RUNNING
    queue.finish(first, JobState.DONE, result=1)
    assert (first.state, first.result) == (JobState.DONE, 1)
    assert queue.take(0) is second
    assert not queue.idle


def test_a_newer_preview_supersedes_older_ones() -> None:
    queue = JobQueue()
    running = Job(JobKind.PREVIEW, 1, supersedes=True)
    queue.submit(running)
    assert queue.take(0) is running
    waiting = Job(JobKind.PREVIEW, 2, supersedes=True)
    assert queue.submit(waiting) == []
    assert running.cancel_token.cancelled  # the running preview is told to stop
    render = Job(JobKind.RENDER, "keep")
    queue.submit(render)
    newest = Job(JobKind.PREVIEW, 3, supersedes=True)
    assert queue.submit(newest) == [waiting]
    assert waiting.state is JobState.CANCELLED
    assert queue.waiting == [render, newest]  # other kinds keep their place


def test_cancel_and_close() -> None:
    queue = JobQueue()
    running, waiting = Job(JobKind.TUNE, 1), Job(JobKind.RENDER, 2)
    queue.submit(running)
    queue.submit(waiting)
    queue.take(0)
    assert queue.cancel(waiting) and waiting.state is JobState.CANCELLED
    assert not queue.cancel(running) and running.cancel_token.cancelled
    assert not running.cancel_token.keeps_progress  # the user stopped it: nothing is kept
    queue.submit(Job(JobKind.RENDER, 3))
    dropped = queue.close()
    assert len(dropped) == 1 and queue.take(0) is None


def test_quitting_asks_the_running_job_to_keep_its_progress() -> None:
    queue = JobQueue()
    running = Job(JobKind.TUNE, 1)
    queue.submit(running)
    queue.take(0)
    queue.close()
    assert running.cancel_token.cancelled and running.cancel_token.keeps_progress


def test_throttle_keeps_every_loss_and_passes_previews_at_once() -> None:
    now = [0.0]
    throttle = ProgressThrottle(0.1, clock=lambda: now[0])
    updates = []
    for step in range(1, 21):
        now[0] += 0.01  # 100 steps per second
        preview = "image" if step == 7 else None
        update = throttle.add(Progress("tuning", step, 20, loss=float(step), preview=preview))
        if update is not None:
            updates.append(update)
    last = throttle.flush()
    assert last is None or last.latest.step == 20
    steps = [u.latest.step for u in updates]
    assert steps[0] == 1 and 7 in steps and steps[-1] == 20
    assert len(updates) <= 5
    assert [s for u in updates for s, _ in u.losses] == list(range(1, 21))
