"""What the dashboard does to jobs: start, follow up, retry, kill and show changes, on the box
that owns the job. Dialogs only ask; each box call runs in a worker thread and its result
comes back as a message.

This box keeps its fast path (the engine in this process: a kill holds the process's pidfd
from the checks to the signal); another box is driven through the `Box` interface, and runs
its own checks and kill: the dialog shows the checks as that box ran them.

A mixin of the app (it uses the app's boxes and engine, `tell`, `refresh_jobs` and selection).
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import peewee
from textual import work

from codexdash.boxes import LOCAL, StartSpec
from codexdash.errors import BadInput, CodexdashError
from codexdash.jobs import JobView
from codexdash.starting import StartRequest
from codexdash.kill import KillFlow
from codexdash.ui.changes_screen import ChangesScreen
from codexdash.ui.columns import ExternalView
from codexdash.ui.kill_dialog import KillDialog
from codexdash.ui.messages import KillDone, KillVerified, StartDone
from codexdash.views import remote_view
from codexdash.ui.start_dialog import StartDialog

# What a worker may meet in the core; shown to the user, never a crash.
ENGINE_ERRORS = (CodexdashError, peewee.PeeweeException, sqlite3.Error, OSError)
NOT_OURS = "was not started by codexdash: no marker to verify; it is read-only"


class JobActions:
    # ---- which job -------------------------------------------------------------------------

    def _job_to_act_on(self, doing: str) -> JobView | None:
        """The selected job, or None after saying why there is none to act on."""
        v = self._selected_view()
        if v is None:
            self.tell("no job selected", severity="warning")
            return None
        if isinstance(v, ExternalView):
            self.tell(f"cannot {doing} session {v.job.id}: it {NOT_OURS}", severity="warning")
            return None
        return v

    def action_show_changes(self) -> None:
        """What the selected job changed (`codexdash diff`), read in the view's own worker."""
        v = self._job_to_act_on("show the changes of")
        if v is None:
            self.let_keys_go()
            return
        self.push_screen(ChangesScreen(self.box_of(v), v.job))

    def box_of(self, v: JobView):
        """The box that owns the job (its checks, its kill, its files)."""
        return self.boxes.get(v.host) or self.local_box

    # ---- starting a job: the dialog asks, a worker starts -------------------------------------

    def action_start_job(self) -> None:
        self._ask_start()

    def action_follow_up(self) -> None:
        v = self._job_to_act_on("follow up on")
        if v is None:
            self.let_keys_go()
            return
        j = v.job
        if j.is_live:
            self.tell(f"job {j.id} is still {j.status}: one turn at a time; follow up when it ends", severity="warning")
            self.let_keys_go()
        elif not j.session_file:
            self.tell(f"job {j.id} has no Codex session to continue (no session file)", severity="warning")
            self.let_keys_go()
        else:
            self._ask_start(StartRequest(prompt="", cwd=j.cwd, model=j.model, sandbox=j.sandbox, parent=j, host=v.host))

    def _ask_start(self, request: StartRequest | None = None, error: str = "") -> None:
        self.hold_keys()  # typed before the dialog is up: they go to its prompt, in order
        self.push_screen(StartDialog(self.start_cwd, request, error, hosts=list(self.boxes)), self._start_answered)

    def _start_answered(self, request: StartRequest | None) -> None:
        if request is None:
            return
        self._starting += 1
        self._update_status()
        self._start(request)

    def action_retry_job(self) -> None:
        v = self._job_to_act_on("retry")
        if v is None:
            return
        self._starting += 1
        self._update_status()
        self._retry(v.job.id, v.host)

    @work(thread=True, group="start")
    def _start(self, request: StartRequest) -> None:
        asked = replace(request, extra_args=list(request.extra_args))  # as typed: the engine may normalise its copy
        try:
            if request.host != LOCAL:
                job = self._start_on_box(request)
            elif request.parent is not None:
                job = self.engine.resume(request.parent, request.prompt, model=request.model, sandbox=request.sandbox,
                                          name=request.name)
            else:
                job = self.engine.start(request)
        except BadInput as exc:
            self.post_message(StartDone(asked, error=str(exc), bad_input=True))
        except ENGINE_ERRORS as exc:
            self.post_message(StartDone(asked, error=str(exc)))
        else:
            self.post_message(StartDone(asked, job=job))

    def _start_on_box(self, request: StartRequest):
        """Starts (or follows up) on another box: the job as that box tells it."""
        box = self.boxes[request.host]
        if request.parent is not None:
            data = box.resume(request.parent.id, request.prompt, model=request.model, sandbox=request.sandbox,
                              name=request.name)
        else:
            data = box.start(StartSpec(prompt=request.prompt, cwd=request.cwd or None, model=request.model,
                                       sandbox=request.sandbox, extra_args=list(request.extra_args), name=request.name))
        self.look_again(request.host)
        return remote_view(data, request.host).job

    @work(thread=True, group="start")
    def _retry(self, job_id: str, host: str = LOCAL) -> None:
        asked = StartRequest(prompt="", cwd="", host=host)
        try:
            if host != LOCAL:
                self.look_again(host)
                job = remote_view(self.boxes[host].retry(job_id), host).job
            else:
                job = self.engine.retry(self.engine.find(job_id))
        except ENGINE_ERRORS as exc:
            self.post_message(StartDone(asked, error=f"retry of job {job_id}: {exc}"))
        else:
            self.post_message(StartDone(asked, job=job))

    def on_start_done(self, message: StartDone) -> None:
        self._starting -= 1
        self._update_status()
        job = message.job
        if job is not None:
            how = f"follow-up on job {job.parent_id}" if job.parent_id else f"retry of job {job.retry_of}" if job.retry_of else "job"
            where = "" if message.request.host == LOCAL else f" on {message.request.host}"
            self.tell(f"started {how}{where}: {job.id} (PID {job.pid})")
            self.table.select_soon(job.id)
            self.refresh_jobs()
        elif message.bad_input and self.screen is self.screen_stack[0]:
            self._ask_start(message.request, message.error or "")  # back to the dialog, as typed
        else:
            self.tell(f"job not started: {message.error}", severity="error")
            self.refresh_jobs()  # a failed start may have left a record (failed to start)

    # ---- killing a job: verified in a worker, confirmed in the dialog, carried out in a worker ---

    def action_kill_job(self) -> None:
        v = self._job_to_act_on("kill")
        if v is None:
            return
        if v.host != LOCAL:
            self._verify_remote_kill(v)
        else:
            self._verify_kill(v.job.id)

    @work(thread=True, group="kill")
    def _verify_kill(self, job_id: str) -> None:
        try:
            job = self.engine.find(job_id)
            flow = KillFlow(self.engine, job)
            report = flow.verify()
        except ENGINE_ERRORS as exc:
            self.post_message(KillDone(job_id, str(exc), severity="error"))
            return
        if flow.finished is not None:  # a kill left by a codexdash that died: finished now
            self.post_message(KillDone(job_id, flow.finished.summary(job.status), status=job.status))
        elif not report.ok and not job.is_live:
            flow.close()
            self.post_message(KillDone(job_id, str(flow.refusal()), severity="warning", status=job.status))
        else:
            self.post_message(KillVerified(flow))

    def on_kill_verified(self, message: KillVerified) -> None:
        flow = message.flow

        def answered(confirmed: bool | None) -> None:
            if not flow.report.ok:  # refused, and recorded so, when verified: nothing more to do
                flow.close()
                self.tell(f"kill of job {flow.job.id} refused: {flow.report.reason()}", severity="error")
                return
            if confirmed:
                self._killing.add(flow.job.id)
            self._answer_kill(flow, bool(confirmed))

        self.push_screen(KillDialog(flow.job, flow.report, flow.plan), answered)

    @work(thread=True, group="kill")
    def _answer_kill(self, flow: KillFlow, confirmed: bool) -> None:
        job = flow.job
        try:
            if not confirmed:
                flow.cancel()
                done = KillDone(job.id, status=job.status)
            else:
                result = flow.carry_out()
                done = KillDone(job.id, result.summary(job.status), status=job.status)
        except ENGINE_ERRORS as exc:
            done = KillDone(job.id, str(exc), severity="error")
        finally:
            flow.close()
        self.post_message(done)

    def on_kill_done(self, message: KillDone) -> None:
        if message.status is not None:
            self.attention.settled_by_kill(message.job_id, message.status)  # its end is told here, once
        self._killing.discard(message.job_id)
        if message.text:
            self.tell(message.text, severity=message.severity)
        self.refresh_jobs()
