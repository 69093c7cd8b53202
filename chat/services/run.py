"""The one completion service: every door (the chat API, /api/chat/completed, the
compat generate_chat_completion, the title and tag tasks, the chat pages) runs a
completion through `completion_run` and only translates what comes out.

`completion_run` covers the catalog lookup, access, loading the pipe and filters,
the inlet filters and rerouting; the `CompletionRun` it returns covers the pipe or
upstream model, the stream filters, the outlet filters, stop tracking, the
background tasks and error shaping. The steps themselves are chat.services.completion's.

Title and tag generation run here too (they are completions): after an answer
(`background_tasks`), or asked for directly (POST /api/v1/tasks/title/completions
and /tags/completions). They call the chat's model with `__task__` set (Open
WebUI's task names), and, unlike Open WebUI, through the global and model filters
too, so a filter that scrubs personal data protects these calls as well.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from chat.services import background
from chat.services.catalog import Catalog, catalog_for
from chat.services.completion import (
    CompletionRequest,
    Outcome,
    aprepare_completion,
    chunk_dict,
    completion_dict,
    event_chunk,
    final_content,
    start_completion,
    stream_answer,
)
from chat.services.connections import UpstreamError
from chat.services.tasks import track, was_stopped
from functions.services.context import CallContext
from functions.services.runtime import HookError, apply_outlet

log = logging.getLogger(__name__)


def error_frame(exc: Exception) -> dict[str, Any]:
    """What a client is told of a completion that failed once it had started."""
    if isinstance(exc, HookError):
        return {
            "error": {
                "message": exc.described,
                "type": "function_error",
                "function_id": exc.function_id,
            }
        }
    return {"error": {"message": f"Upstream model failed: {exc}", "type": "upstream_error"}}


class CompletionFailed(Exception):
    """A started completion failed (its pipe or upstream model): `frame` is the error
    body for the client, `status` its HTTP status (500 for a function, 502 upstream)."""

    def __init__(self, error: Exception) -> None:
        self.error, self.frame = error, error_frame(error)
        self.status = 502 if isinstance(error, UpstreamError) else 500
        super().__init__(self.frame["error"]["message"])


class CompletionStopped(Exception):
    """The chat's answer was stopped (POST /api/tasks/chat/{id}/stop) before it ended."""


@dataclass
class CompletionRun:
    """A prepared completion whose inlet filters have run: take its answer as a stream
    (`stream`) or whole (`answer`), once; or run only its outlet filters (`completed`)."""

    req: CompletionRequest
    outcome: Outcome = field(default_factory=Outcome)

    async def stream(self, *, events: bool = False) -> AsyncIterator[list[dict]]:
        """Batches of chunk dicts, ending with the finish chunk, then the outlet filters
        and background tasks. A failure ends it with an error frame, a stop with a
        finish chunk; a disconnect (a cancel that is no stop) propagates.

        With `events`, the plugins' events come among the chunks as event chunks
        (chat.services.completion.event_chunk): each event the request's recorder
        takes (the inlet's first), in the order taken, as soon as it is taken."""
        batches = self._batches()
        if events:
            batches = _with_events(self.req, batches)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                yield batch

    def events(self) -> list[dict[str, Any]]:
        """The plugins' events so far ({"type", "data"}, canonical types), in order."""
        return [event.as_dict() for event in self.req.recorder.events]

    async def _batches(self) -> AsyncIterator[list[dict]]:
        req = self.req
        with track(req.body.get("chat_id"), str(req.user.pk)) as running:
            try:
                async for batch in stream_answer(req, self.outcome):
                    yield batch
                await self._background()
            except asyncio.CancelledError:
                if not was_stopped(running):
                    raise  # the client went away: nothing left to write to
                yield [chunk_dict(req, {}, "stop")]
            except (HookError, UpstreamError) as exc:
                model = req.body.get("model")
                log.error("Completion for %s failed mid-stream", model, exc_info=exc)
                yield [error_frame(exc)]

    async def answer(self) -> dict[str, Any]:
        """The whole chat.completion, with background task results merged in. Raise
        CompletionFailed or CompletionStopped."""
        req = self.req
        with track(req.body.get("chat_id"), str(req.user.pk)) as running:
            try:
                async for _ in stream_answer(req, self.outcome):
                    pass
                return completion_dict(req, self.outcome) | await self._background()
            except asyncio.CancelledError:
                if not was_stopped(running):
                    raise
                raise CompletionStopped("Stopped.") from None
            except (HookError, UpstreamError) as exc:
                log.error("Completion for %s failed", req.body.get("model"), exc_info=exc)
                raise CompletionFailed(exc) from exc

    async def completed(self, body: dict[str, Any]) -> dict[str, Any]:
        """Only the outlet filters, on a conversation a client finished itself."""
        return await apply_outlet(self.req.filters, body, self.req.context)

    async def _background(self) -> dict[str, Any]:
        if not self.req.body.get("background_tasks"):
            return {}
        return await run_background_tasks(self.req, final_content(self.outcome))


_END = object()


async def ready_batches(inbox: asyncio.Queue, end: object) -> AsyncIterator[list]:
    """The lists a queue holds, those ready together joined into one batch (the door
    writes each batch at once), until `end`."""
    while True:
        batch, item = [], await inbox.get()
        while item is not end:
            batch.extend(item)
            if inbox.empty():
                break
            item = inbox.get_nowait()
        if batch:
            yield batch
        if item is end:
            return


async def _cancel_at(batches: AsyncIterator[list[dict]]) -> list[dict] | None:
    """Raise CancelledError where `batches` stands; what it yields instead (a stop's
    finish chunk), or None once it ended."""
    try:
        return await batches.athrow(asyncio.CancelledError())
    except StopAsyncIteration:
        return None


def _tee(context: CallContext, then: Callable[[], None]) -> None:
    """Call `then` after each event the context's emitter or caller passed on."""
    emit, call = context.event_emitter, context.event_call

    async def tee_emit(raw: dict) -> None:
        await emit(raw)
        then()

    async def tee_call(raw: dict) -> Any:
        answer = await call(raw)
        then()
        return answer

    context.event_emitter, context.event_call = tee_emit, tee_call


def _with_events(
    req: CompletionRequest, batches: AsyncIterator[list[dict]]
) -> AsyncIterator[list[dict]]:
    """`batches` with the request's events as event chunks, in the order both came."""
    return _EventedStream(req, batches).stream()


@dataclass(eq=False)
class _EventedStream:
    """An answer's batches and its plugins' events, merged as they come.

    A task of its own takes the batches, so an event is passed on when the recorder
    takes it, not with the next chunk (a pipe may work for a while after a status).
    What is ready together goes out as one batch. The task takes the next batch only
    once the reader asked for more, so a slow client still holds the pipe back
    (README, Isolation: backpressure). The stop tracking registers that task
    (CompletionRun._batches runs in it), which ends with the stop's finish chunk;
    leaving early cancels it."""

    req: CompletionRequest
    batches: AsyncIterator[list[dict]]
    inbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    # Set when the reader asks for more: the task may take the next batch.
    wanted: asyncio.Event = field(default_factory=asyncio.Event)
    seen: int = 0

    async def stream(self) -> AsyncIterator[list[dict]]:
        _tee(self.req.context, self._take_recorded)
        self._take_recorded()  # the inlet filters' events
        name = f"completion-{self.req.completion_id}"
        producer = asyncio.create_task(self._produce(), name=name)
        try:
            async for batch in ready_batches(self.inbox, _END):
                yield batch
                self.wanted.set()
            producer.result()  # a failure of its own (not the pipe's: that is a frame)
        finally:
            if not producer.done():
                producer.cancel()
            await asyncio.wait([producer])

    def _take_recorded(self) -> None:
        recorded = self.req.recorder.events
        for event in recorded[self.seen :]:
            self.inbox.put_nowait([event_chunk(self.req, event)])
        self.seen = len(recorded)

    async def _produce(self) -> None:
        try:
            batch = await anext(self.batches, None)
            while batch is not None:
                self.wanted.clear()
                self.inbox.put_nowait(batch)
                try:
                    await self.wanted.wait()
                except asyncio.CancelledError:
                    # Stopped (or left) while the reader wrote: the answer hears it at
                    # the chunk it stands at, and ends as it would have there.
                    batch = await _cancel_at(self.batches)
                else:
                    batch = await anext(self.batches, None)
        finally:
            self.inbox.put_nowait(_END)


async def completion_run(
    *,
    user,
    body: dict[str, Any],
    origin: dict | None = None,
    task: str | None = None,
    task_body: dict | None = None,
    catalog: Catalog | None = None,
    bypass_filter: bool = False,
    inlet: bool = True,
) -> CompletionRun:
    """Start a completion: find the model, check the user may use it, load its pipe
    and filters, and run the inlet filters. Raise ObjectDoesNotExist or
    PermissionDenied for the model, FilterAbort when an inlet refuses: all before
    anything is sent, so each door answers with a clear 4xx.

    `task` sets __task__ (with `task_body` as __task_body__); `bypass_filter` runs no
    filters (compat's generate_chat_completion); `inlet=False` prepares only, for
    /api/chat/completed. `origin` is where the request came from, for `__request__`."""
    catalog = catalog or await catalog_for(str(body.get("model", "")))
    req = await aprepare_completion(
        user=user, body=body, catalog=catalog, task=task, task_body=task_body, origin=origin
    )
    if bypass_filter:
        req.filters = []
    if inlet:
        try:
            await start_completion(req)
        except HookError as exc:
            # An inlet refused, or failed: what the filters emitted first goes back
            # with the error.
            exc.keep_events(req.recorder)
            raise
    return CompletionRun(req)


# Title and tag generation


async def task_answer(
    *,
    user,
    model_id: str,
    prompt: str,
    task: str,
    catalog: Catalog | None = None,
    task_body: dict | None = None,
    chat_id: str | None = None,
    origin: dict | None = None,
) -> dict[str, Any]:
    """Ask the model one task prompt (filters applied, __task__ set); return the
    chat.completion. Raise CompletionFailed / CompletionStopped as `answer` does."""
    body: dict[str, Any] = {
        "model": model_id,
        "messages": [{"role": "user", "content": prompt}],
        "stream": False,
    }
    if chat_id:
        body["chat_id"] = chat_id
    run = await completion_run(
        user=user, body=body, catalog=catalog, task=task, task_body=task_body, origin=origin
    )
    return await run.answer()


async def task_completion(
    *, user, task: str, body: dict[str, Any], origin: dict | None = None
) -> dict[str, Any]:
    """Open WebUI's POST /api/v1/tasks/{title,tags}/completions: the task's chat completion
    for body's model and messages, its content the JSON the prompt asks for; __task_body__
    is the request body. Raise ObjectDoesNotExist / PermissionDenied for the model."""
    return await task_answer(
        user=user,
        model_id=str(body.get("model") or ""),
        task=task,
        prompt=background.task_prompt(task, body.get("messages") or []),
        task_body=body,
        chat_id=body.get("chat_id"),
        origin=origin,
    )


async def _task_text(req: CompletionRequest, task: str, messages: list[dict]) -> str:
    answer = await task_answer(
        user=req.user,
        model_id=str(req.body.get("model")),
        task=task,
        catalog=req.catalog,
        origin=req.origin,
        prompt=background.task_prompt(task, messages),
    )
    return str(answer["choices"][0]["message"]["content"] or "")


async def run_background_tasks(req: CompletionRequest, content: str) -> dict[str, Any]:
    """Run the tasks a request asked for (`background_tasks`); emit them as events."""
    wanted = req.body.get("background_tasks") or {}
    messages = [*(req.body.get("messages") or []), {"role": "assistant", "content": content}]
    results: dict[str, Any] = {}
    if wanted.get(background.TITLE_GENERATION):
        text = await _task_text(req, background.TITLE_GENERATION, messages)
        results["title"] = background.parse_title(text)
        await req.context.event_emitter({"type": "chat:title", "data": results["title"]})
    if wanted.get(background.TAGS_GENERATION):
        text = await _task_text(req, background.TAGS_GENERATION, messages)
        results["tags"] = background.parse_tags(text)
        await req.context.event_emitter({"type": "chat:tags", "data": results["tags"]})
    return results
