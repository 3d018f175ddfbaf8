"""One solve in its own process group, so a cancel (or a dying worker) can end it at once.

The child talks to the worker over a pipe: ``("progress", {...})`` while HiGHS runs,
then ``("result", result_json, report_html)`` or ``("error", message)``. Pyomo and
HiGHS print to stdout; the child's stdout is not the worker's.
"""

from __future__ import annotations

import errno
import multiprocessing as mp
import os
import signal
import tempfile
import threading
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NoReturn


def _watch_parent(parent_pid: int) -> None:
    """The worker died (killed, OOM): take the whole solve down with it."""
    while True:
        if os.getppid() != parent_pid:
            os.killpg(0, signal.SIGKILL)
        time.sleep(0.5)


def _end_quietly(own_group: bool) -> NoReturn:
    """The worker closed its end of the pipe (it stopped, or died): nobody waits for this
    solve any more, so end it — and whatever it started — without a word (no traceback)."""
    if own_group:
        try:
            os.killpg(0, signal.SIGKILL)
        except OSError:
            pass
    os._exit(0)


class _Pipe:
    """The child's end of the pipe: a send the worker can no longer read ends the child."""

    def __init__(self, conn: Connection, own_group: bool) -> None:
        self.conn = conn
        self.own_group = own_group

    def send(self, message: tuple[Any, ...]) -> None:
        try:
            self.conn.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            _end_quietly(self.own_group)
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF, errno.ECONNRESET):
                _end_quietly(self.own_group)
            raise


#: kept back from a job's time limit for sending the result to the worker, which stores
#: and publishes it
HAND_OVER_S = 1.0


def _child(conn: Connection, scenario: dict[str, Any], options: dict[str, Any],
           deadline: float | None = None) -> None:
    # the parent is the worker (spawn) or the worker's fork server, which exits with it
    parent_pid = os.getppid()
    try:
        os.setsid()
        own_group = True
    except OSError:
        own_group = False
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    pipe = _Pipe(conn, own_group)
    try:
        import optimizer
        from services.planner.store import clean_json

        sc = optimizer.load_scenario(scenario)

        def progress(p: Any) -> None:
            pipe.send(("progress", clean_json({
                "incumbent": p.incumbent, "bound": p.bound, "gap": p.gap,
                "elapsed_s": p.elapsed_s, "label": p.label,
            })))

        limits: dict[str, Any] = {k: options.get(k) for k in ("time_limit_s", "mip_gap", "threads")}
        if deadline is not None:
            # the job's time limit is its wall clock: the report and the hand-over too
            limits["time_limit_s"] = max(0.0, deadline - time.time() - HAND_OVER_S
                                         - optimizer.report_seconds(sc))
        if options.get("frontier_part"):
            from services.planner.parts import run_part

            pipe.send(("result", clean_json(run_part(sc, options)), None))
            return
        if options.get("frontier"):
            pipe.send(("result", *_frontier(sc, options, progress, pipe)))
            return
        if sc.routing.single_visit:  # a CVRPLIB-style scenario: one visit per customer
            result = optimizer.solve_cvrp(sc, progress=progress, **limits)
        else:
            # tomorrow's dispatch: one hub whose own data admit no plan must not leave
            # every other hub without its run sheet
            result = optimizer.solve(sc, progress=progress,
                                     baselines=options.get("baselines", True),
                                     leave_out_infeasible=bool(options.get("dispatch")),
                                     **limits)
        data = clean_json(result.to_json_dict())
        html = None
        try:
            with tempfile.TemporaryDirectory(prefix="packloop-report-") as tmp:
                path = optimizer.write_report(result, sc, Path(tmp))
                html = Path(path).read_text(encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 - a plan without a report is still a plan
            data["report_error"] = f"{type(exc).__name__}: {exc}"
        pipe.send(("result", data, html))
    except Exception as exc:  # noqa: BLE001 - reported to the worker, which records it
        first = str(exc).strip() or type(exc).__name__
        pipe.send(("error", f"{type(exc).__name__}: {first}", traceback.format_exc(limit=5)))
    finally:
        try:
            conn.close()
        except OSError:
            pass


def _frontier(sc: Any, options: dict[str, Any], progress: Any, pipe: _Pipe | None = None
              ) -> tuple[dict[str, Any], str]:
    """A frontier job: `optimizer.solve_frontier` with each point at the frontier's point
    time limit; the result is the `plan frontier --json` document without the points'
    full plans (a county's are megabytes each: `plan frontier --out` writes them), the
    report its curves and marginal costs. With `options["_parts"]` (set by the worker: its
    store, id and lease) the hubs' tasks are parts any planner worker may take
    (`services.planner.parts`); the worker announces them when the pipe asks."""
    from optimizer.frontier import solve_frontier
    from services.planner.parts import SharedHubTasks
    from services.planner.store import clean_json
    from services.reports.frontier import frontier_html

    f = options["frontier"]
    on_hub, on_point = frontier_progress(progress)
    shared = None
    if options.get("_parts") and pipe is not None:
        p = options["_parts"]
        shared = SharedHubTasks(p["store_url"], p["job_id"], p["worker_id"],
                                float(p["lease_s"]),
                                announce=lambda ids: pipe.send(("enqueue", ids)))
    front = solve_frontier(sc, points=int(f.get("points", 7)),
                           fronts=tuple(f.get("fronts", ("single_use", "co2e"))),
                           time_limit_s=f.get("point_time_limit_s"),
                           mip_gap=options.get("mip_gap"), threads=options.get("threads"),
                           progress=progress, on_hub=on_hub, on_point=on_point,
                           run_tasks=shared)
    doc = clean_json(front.to_json_dict(plans={k: None for k in range(len(front.points))}))
    doc["kind"] = "frontier"
    if shared is not None and shared.ran_by:
        doc.setdefault("stats", {})["hubs_ran_by"] = dict(sorted(shared.ran_by.items()))
    return doc, frontier_html(doc, sc.name)


def frontier_progress(progress: Any) -> tuple[Any, Any]:
    """`solve_frontier`'s `on_hub` and `on_point` as job progress. Why: solved hub by hub, a
    county's front runs for minutes after the planner's last HiGHS report with no HiGHS log
    of its own reaching the job (the hubs solve in other processes), so a job's progress
    said nothing new until the end; now its label says which hubs and points are done."""
    from optimizer.solver import Progress

    started = time.monotonic()
    nan = float("nan")

    def on_hub(hub: str, done: int, hubs: int) -> None:
        progress(Progress(nan, nan, nan, time.monotonic() - started,
                          f"frontier: hub {hub}'s fronts solved ({done}/{hubs})"))

    def on_point(p: Any) -> None:
        gap = p.result.gap if p.result.gap is not None else nan
        bound = p.result.bound if p.result.bound is not None else nan
        progress(Progress(p.cost_cny, bound, gap, time.monotonic() - started,
                          f"frontier: {p.front} {p.role} point"))

    return on_hub, on_point


_CTX: Any = None


def _context() -> Any:
    """A fork server with the optimiser imported once: a solve starts in milliseconds, not
    the second or two a fresh interpreter needs to import Pyomo; it never forks the
    worker itself (which runs Kafka threads)."""
    global _CTX
    if _CTX is None:
        ctx: mp.context.BaseContext
        try:
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["optimizer", "services.planner.runner"])
        except ValueError:  # no fork server on this platform
            ctx = mp.get_context("spawn")
        _CTX = ctx
    return _CTX


def warm_up() -> None:
    """Start the fork server now, with the optimiser imported in it: started by the first
    job instead, its second or two counted against that job's time limit, and a first job
    of 5 s failed on a fresh worker where the same job on a warm one was optimal in 2.5 s."""
    ctx = _context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


class SolveProcess:
    """Start a solve; poll it for messages; kill it (and its children) on demand."""

    def __init__(self, scenario: dict[str, Any], options: dict[str, Any],
                 deadline: float | None = None) -> None:
        """`deadline` (a `time.time()`): when the result should be back; the solve's time
        limit is what is left of it once the child has read the scenario, less the
        report's time and the hand-over."""
        ctx = _context()
        self._conn, child_conn = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_child, args=(child_conn, scenario, options, deadline),
            name="packloop-solve", daemon=False,
        )
        self.process.start()
        child_conn.close()

    def messages(self, timeout_s: float) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        try:
            if self._conn.poll(timeout_s):
                while self._conn.poll(0):
                    out.append(self._conn.recv())
        except (EOFError, OSError):
            pass
        return out

    def alive(self) -> bool:
        return self.process.is_alive()

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def kill(self) -> None:
        pid = self.process.pid
        if pid is not None and self.process.is_alive():
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    self.process.kill()
                except Exception:  # noqa: BLE001
                    pass
        self.process.join(5)

    def close(self) -> None:
        self.kill()
        try:
            self._conn.close()
        except OSError:
            pass
