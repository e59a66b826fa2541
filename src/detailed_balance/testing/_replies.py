"""What the loopback server answers: the replies to GET and POST, scripted faults included.

A reply is ``(status, body, headers)``; ``None`` means drop the connection and ``("trickle",
reply)`` means send the body a byte at a time. The HTTP layer is in
:mod:`detailed_balance.testing.server`.
"""

from __future__ import annotations

import asyncio
import json
import math
import time

from ._script import GARBAGE_REPLY, ServerState

Reply = tuple[int, bytes, dict]  # status, JSON body (possibly broken on purpose), extra headers


def response(status: int, payload, headers: dict | None = None) -> Reply:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return status, body, headers or {}


def hostile(st: ServerState, fault: str, auth: str, req: dict) -> Reply | None:
    """The reply of a hostile fault kind, or None when ``fault`` is not one."""
    model = req.get("model")
    common = {"id": "cmpl-h", "object": "text_completion", "created": 0, "model": model}
    if fault in ("echo401", "echo400", "echo404"):
        status = int(fault[4:])
        message = f"invalid credentials: {auth!r} was rejected (header Authorization: {auth})"
        return response(status, {"error": {"message": message, "type": "echo"}})
    if fault == "echo_reply":
        choice = {"index": 0, "text": f" your key is {auth}", "finish_reason": "stop"}
        return response(200, {**common, "choices": [choice]})
    if fault == "redirect":
        return response(307, {}, {"Location": st.script.redirect_to})
    if fault == "control":
        choice = {"index": 0, "text": " ca\x00t\u2028", "finish_reason": "stop"}
        return response(200, {**common, "choices": [choice]})
    if fault == "bad_usage":
        choice = {"index": 0, "text": " cat", "finish_reason": "stop"}
        usage = {"prompt_tokens": "many", "completion_tokens": [1], "total_tokens": None}
        return response(200, {**common, "choices": [choice], "usage": usage})
    if fault == "no_choices":
        return response(200, {**common, "choices": []})
    if fault == "wrong_types":
        return response(200, {**common, "choices": [{"index": 0, "text": 42}]})
    if fault == "not_object":
        return response(200, [1, 2, 3])
    if fault == "deep":
        return response(200, b"[" * 100_000 + b"]" * 100_000)
    if fault == "empty":
        return response(200, b"")
    if fault == "huge":
        choice = {"index": 0, "text": " cat" + "x" * st.script.huge_chars, "finish_reason": "stop"}
        return response(200, {**common, "choices": [choice]})
    if fault == "nan_logprobs":
        lp = {
            "tokens": [" cat"],
            "token_logprobs": [math.nan],
            "top_logprobs": [{" cat": -math.inf}],
        }
        choice = {"index": 0, "text": " cat", "finish_reason": "stop", "logprobs": lp}
        return response(200, {**common, "choices": [choice]})
    return None


def not_found(path: str) -> Reply:
    return response(404, {"error": {"message": f"no route {path}", "type": "not_found"}})


def reply_to_get(st: ServerState, path: str) -> Reply:
    if path.rstrip("/").endswith("/models"):
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "loopback"}
            for m in st.script.models
        ]
        return response(200, {"object": "list", "data": data})
    if path.startswith("/_stats"):
        stats = {"requests": st.requests, "faults": dict(st.faults), "fields": sorted(st.fields)}
        return response(200, stats)
    if path.startswith("/health"):
        return response(200, {"status": "ok"})
    return not_found(path)


async def reply_to_post(
    st: ServerState, path: str, body: bytes, auth: str = ""
) -> Reply | tuple | None:
    """The reply to a POST, None to drop the connection, or ``("trickle", reply)``."""
    script = st.script
    try:
        req = json.loads(body or b"{}")
    except json.JSONDecodeError:
        return response(
            400, {"error": {"message": "request body is not JSON", "type": "invalid_request_error"}}
        )
    st.fields.update(req)
    chat = path.rstrip("/").endswith("/chat/completions")
    if not chat and not path.rstrip("/").endswith("/completions"):
        return not_found(path)
    if req.get("model") not in script.models:
        error = {
            "message": f"The model `{req.get('model')}` does not exist",
            "type": "invalid_request_error",
            "code": "model_not_found",
        }
        return response(404, {"error": error})
    fault = st.draw_fault()
    if script.latency:
        await asyncio.sleep(script.latency)
    if fault == "429":
        return response(
            429,
            {"error": {"message": "rate limited (scripted)", "type": "rate_limit"}},
            {
                "Retry-After": script.retry_after
                if isinstance(script.retry_after, str)
                else f"{script.retry_after:g}"
            },
        )
    if fault == "500":
        return response(
            500, {"error": {"message": "internal error (scripted)", "type": "server_error"}}
        )
    if fault == "drop":
        return None
    if fault == "malformed":
        return response(200, b'{"id": "cmpl-x", "choices": [{"text": ')
    if fault == "timeout":
        await asyncio.sleep(script.hang)
    special = hostile(st, fault, auth, req) if fault else None
    if special is not None:
        return special
    if chat:
        prompt = "\n".join(
            str(m.get("content", "")) for m in req.get("messages", []) if m.get("role") == "user"
        )
    else:
        prompt = req.get("prompt", "")
        prompt = prompt[0] if isinstance(prompt, list) else prompt
    logprobs = None
    if req.get("echo") and req.get("logprobs") is not None and not chat:
        k, generate = int(req["logprobs"]), req.get("max_tokens", 16) != 0
        text, logprobs = st.score(prompt, k, generate)
    else:
        text = " " + GARBAGE_REPLY if fault == "garbage" else st.reply(prompt, req.get("seed"))
    usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": 1 if text else 0}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    common = {
        "id": f"cmpl-{st.requests}",
        "created": int(time.time()),
        "model": req["model"],
        "usage": usage,
    }
    if chat:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text.strip()},
            "finish_reason": "stop",
        }
        reply = response(200, {**common, "object": "chat.completion", "choices": [choice]})
        return ("trickle", reply) if fault == "trickle" else reply
    choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": logprobs}
    reply = response(200, {**common, "object": "text_completion", "choices": [choice]})
    return ("trickle", reply) if fault == "trickle" else reply
