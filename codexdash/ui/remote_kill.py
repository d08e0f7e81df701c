"""A kill of a job on another box: that box runs the identity checks (`box.verify`), the
dialog shows them as it ran them, and, confirmed, the box checks again and kills (`box.kill`).
Nothing is signalled from here: a PID means something only on its own box.

A mixin of the app (it uses its boxes, `push_screen`, `_killing`, `look_again`).
"""

from __future__ import annotations

from textual import work

from codexdash.identity import Check, IdentityReport
from codexdash.jobs import JobView
from codexdash.ui.job_actions import ENGINE_ERRORS
from codexdash.ui.kill_dialog import KillDialog
from codexdash.ui.messages import KillDone, RemoteKillVerified


class RemoteKill:
    @work(thread=True, group="kill")
    def _verify_remote_kill(self, v: JobView) -> None:
        box, job = self.box_of(v), v.job
        try:
            checks = box.verify(job.id)
            report = IdentityReport(job_id=job.id, pid=checks.get("pid"), cmdline=[str(a) for a in checks.get("cmdline") or []],
                                    checks=[Check(str(c.get("name")), c.get("ok") is True, str(c.get("detail")))
                                            for c in checks.get("checks") or [] if isinstance(c, dict)])
        except (*ENGINE_ERRORS, AttributeError, TypeError) as exc:  # AttributeError, TypeError: an answer of another shape
            self.post_message(KillDone(job.id, f"kill of job {job.id} on {box.name}: {exc}", severity="error"))
            return
        self.post_message(RemoteKillVerified(box.name, job, report))

    def on_remote_kill_verified(self, message: RemoteKillVerified) -> None:
        job, report, host = message.job, message.report, message.host

        def answered(confirmed: bool | None) -> None:
            if not report.ok:
                self.tell(f"kill of job {job.id} on {host} refused: {report.reason()}", severity="error")
            elif confirmed:
                self._killing.add(job.id)
                self._remote_kill(host, job.id)

        plan = f"SIGINT, then SIGTERM, then SIGKILL after {host}'s grace periods, to the process group, on {host}"
        self.push_screen(KillDialog(job, report, plan=plan, host=host), answered)

    @work(thread=True, group="kill")
    def _remote_kill(self, host: str, job_id: str) -> None:
        box = self.boxes[host]
        try:
            result = box.kill(job_id)
            identity = result.get("identity") or {}
            checks = ", ".join(("✔ " if c.get("ok") else "✖ ") + str(c.get("name")) for c in identity.get("checks") or [])
            if result.get("outcome") == "refused":
                done = KillDone(job_id, f"{host} refused to kill job {job_id}: {result.get('error')} ({checks})", severity="error")
            else:
                status = (result.get("job") or {}).get("status")
                sent = ", ".join(str(s) for s in result.get("sent") or [])
                done = KillDone(job_id, f"job {job_id} on {host}: {status} after {result.get('seconds')} s ({sent}); "
                                        f"checks as {host} ran them: {checks}",
                                severity="information" if result.get("stopped") else "error", status=status)
        except (*ENGINE_ERRORS, AttributeError, TypeError) as exc:
            done = KillDone(job_id, f"kill of job {job_id} on {host}: {exc}", severity="error")
        self.look_again(host)
        self.post_message(done)
