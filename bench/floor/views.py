"""The floor's two views: what any Django view on daphne costs, and no more.

POST /api/chat/completions reads the JSON body and answers a constant OpenAI chat
completion (content "ok"), or with `"stream": true` a constant SSE stream of
STREAM_CHUNKS chunks (content "t0 ", "t1 ", ...), a finish chunk and `data: [DONE]`:
the shape fnplatform streams for the benchmark's pipe, one ASGI message per chunk.
The frames are built once at import, so the stream measures the transport alone.
"""

import json

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

STREAM_CHUNKS = 2000
CREATED = 1700000000

COMPLETION = {
    "id": "chatcmpl-floor",
    "object": "chat.completion",
    "created": CREATED,
    "model": "floor",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "ok"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
}


def _chunk(delta: dict, finish_reason: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-floor",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "floor",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


FRAMES = (
    *(_chunk({"content": f"t{i} "}) for i in range(STREAM_CHUNKS)),
    _chunk({}, "stop"),
    b"data: [DONE]\n\n",
)


async def _frames():
    for frame in FRAMES:
        yield frame


async def health(request):
    return JsonResponse({"status": "ok", "app": "floor"})


async def completions(request):
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "malformed JSON"}, status=400)
    if isinstance(body, dict) and body.get("stream"):
        response = StreamingHttpResponse(_frames(), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        return response
    return JsonResponse(COMPLETION)
