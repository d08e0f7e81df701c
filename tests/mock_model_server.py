"""A local stand-in for the model API, enough for `codex exec` to run a turn offline.

Codex POSTs `/v1/responses` with `"stream": true` and reads server-sent events. The answer is
read from the prompt: `SLEEP n` makes the model call the shell tool `exec_command` with
`sleep n` first (a long-running job); a patch in the prompt (`*** Begin Patch` ... `*** End
Patch`) makes it call the `apply_patch` tool with it (Codex offers that tool to models it knows,
e.g. `--model gpt-5.5`; with `VIA_SHELL` in the prompt it runs `apply_patch <<'EOF'` through
`exec_command` instead, which Codex intercepts); then, or otherwise, it says "hi from mock".
`YIELD ms` beside it sets the call's `yield_time_ms` (how long Codex waits before handing a
command that still runs back to the model; 600000 when not given).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONFIG_TEMPLATE = """\
model = "mock-model"
model_provider = "mock"
approval_policy = "never"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false
remote_plugin = false
unbounded_connection_retries = false

[model_providers.mock]
name = "mock"
base_url = "http://127.0.0.1:{port}/v1"
env_key = "MOCK_API_KEY"
wire_api = "responses"
requires_openai_auth = false
supports_websockets = false
request_max_retries = 0
stream_max_retries = 0
"""


_PATCH = re.compile(r"\*\*\* Begin Patch\n.*?\*\*\* End Patch\n?", re.S)
_TOOL_OUTPUTS = ("function_call_output", "custom_tool_call_output")


def _is_user(item) -> bool:
    return isinstance(item, dict) and item.get("type") == "message" and item.get("role") == "user"


def _patch_call(items: list, n: int) -> dict | None:
    """An apply_patch call for the patch in the latest user message, if none answered it yet."""
    last = max((i for i, item in enumerate(items) if _is_user(item)), default=None)
    if last is None:
        return None
    if any(isinstance(item, dict) and item.get("type") in _TOOL_OUTPUTS for item in items[last + 1:]):
        return None
    prompt = "\n".join(_texts(items[last:last + 1]))
    patch = _PATCH.search(prompt)
    if patch is None:
        return None
    body = patch.group(0) if patch.group(0).endswith("\n") else patch.group(0) + "\n"
    if "VIA_SHELL" in prompt:
        return {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": "exec_command",
                "arguments": json.dumps({"cmd": f"apply_patch <<'EOF'\n{body}EOF\n", "yield_time_ms": 10000})}
    # A freeform tool: the patch is the call's raw input, not JSON.
    return {"type": "custom_tool_call", "id": f"ctc_{n}", "call_id": f"call_{n}", "name": "apply_patch",
            "input": body, "status": "completed"}


def _texts(items) -> list[str]:
    out = []
    for item in items or []:
        if isinstance(item, dict) and item.get("type") == "message" and item.get("role") == "user":
            for part in item.get("content") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    out.append(part["text"])
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # models list and the like: nothing to offer
        body = b'{"data": [], "models": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            request = {}
        self.server.requests.append(request)
        items = request.get("input") or []
        prompt = "\n".join(_texts(items))
        answered_tool = any(isinstance(i, dict) and i.get("type") == "function_call_output" for i in items)
        sleep = re.search(r"SLEEP (\d+)", prompt)
        yield_ms = re.search(r"YIELD (\d+)", prompt)
        n = len(self.server.requests)
        patch_call = _patch_call(items, n)
        if patch_call is not None:
            item = patch_call
        elif sleep and not answered_tool:
            item = {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": "exec_command",
                    "arguments": json.dumps({"cmd": f"sleep {sleep.group(1)}", "yield_time_ms": int(yield_ms.group(1)) if yield_ms else 600000})}
        else:
            item = {"type": "message", "id": f"msg_{n}", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": "hi from mock", "annotations": []}]}
        response = {"id": f"resp_{n}", "object": "response", "status": "completed", "model": "mock-model", "output": []}
        events = [
            ("response.created", {"type": "response.created", "response": {**response, "status": "in_progress"}}),
            ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
            ("response.completed", {"type": "response.completed", "response": {**response, "output": [item], "usage": {
                "input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
                "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15}}}),
        ]
        body = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class MockModelServer:
    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.requests = []
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> MockModelServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def requests(self) -> list[dict]:
        return self.httpd.requests

    def config_toml(self) -> str:
        return CONFIG_TEMPLATE.format(port=self.port)
