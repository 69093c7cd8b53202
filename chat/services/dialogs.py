"""Durable `__event_call__` dialogs: a plugin's "input", "confirmation" or "execute"
question about one answer of a chat, kept as a record (chat.models.Dialog), so that
it waits for the user whether or not a page is open: reopening the chat, or opening
it on another device, shows it, and answering resumes the plugin.

For what asks (a server-owned run, chat.services.live_run; an action on a message,
chat.services.message_events):

- `DialogAsker(user_id=, chat_id=, message_id=, function_id=, runner=, only_if_open=)`:
  one per run or action call. `ask(event)` opens a dialog and waits for its end;
  `close()` expires those still open when the run or action ends (nobody waits for
  them). `post(event)`: an "execute" script the plugin emitted rather than asked
  for (Open WebUI runs both, and drops an emitted one's value): stored as a dialog
  that nothing waits for (`emitted`), which one page runs, now or when the chat is
  next opened within its timeout. What a chat page started asks whether or not a
  page is open (the dialog waits for one); a request over the API that names a
  chat (`only_if_open`) asks only when one of the chat's pages is open now
  (`page_open`: it answers a probe on the chat's group within PRESENCE_SECONDS),
  and otherwise gets NO_SESSION at once, as any API call does.
- `dialog_caller(call, record=, asker=)`: the context's `event_call`: the dialog
  types go to the asker (their event recorded as before), others (and questions the
  asker will not ask) to `call`.
- `hear_events(context, recorder, asker=, took=)`: both of a call's event doors
  through the chat at once (its emitter and its caller), for runs and actions alike.

For the pages (chat.consumers):

- `dialogs_pending_for(user=, chat_id=)`: the chat's open dialogs, oldest first;
  those nobody can answer any more are expired on the way (their time is up, or
  the run that asked is no longer streaming: its server stopped).
- `dialog_answer(user=, dialog_id=, answer=, cancel=, chat_id=)`: the first answer
  wins (a conditional UPDATE of a pending dialog whose time is not up); a later
  one, or one for a dialog that expired, is ValidationError(code="dialog_closed");
  another user's dialog (or another chat's) is Dialog.DoesNotExist.
- `dialog_claim(user=, dialog_id=, tab=)`: an "execute" script runs in one page
  only (its side effects, a download say, happen once): the first page to claim it
  runs it (CLAIMED), the same page reconnected still does (MINE), the others show
  that another page does (ELSEWHERE). `dialogs_release(user=, chat_id=, tab=)`: a
  page closed, so the scripts it ran unfinished wait for another page (offered
  again with `dialog_opened`). A page that vanished without closing its socket
  keeps its claim: the script then ends as any dialog nobody answers.

What the plugin gets: the answer (input: the text; confirmation: True; execute: the
script's value, or {"error": ...} when it threw); False when the user cancelled
(Open WebUI's answer to a cancelled input or confirmation); TIMED_OUT, Open WebUI's
own shape and words for an event call nobody answered, when it expired. The wait is
FNPLATFORM_DIALOG_TIMEOUT_SECONDS, or the seconds the function's frontmatter names
as `dialog_timeout` (a plugin that needs longer, or wants shorter, says so there).

Messages, to the chat's group and its owner's (chat.services.broadcast; seq None):

- `dialog.opened` {dialog_id, dialog: {id, kind, title, message, placeholder, value,
  input_type, status, function_id}}: draw it (execute's code is not in it: the
  sandbox route serves it);
- `dialog.closed` {dialog_id, status}: answered, cancelled or expired; close it (an
  expired one says so). The answer itself is never broadcast.
- `dialog.presence` {reply_to, probe} (chat group only): a page of the chat answers
  `dialog.here` {probe} to `reply_to`.

Waking the plugin: the waiter of a dialog listens in its process (one listener per
event loop, on a channel of its own, stored on the dialog as `waiter`). An answer
taken in the same process wakes it at once; one taken in another process sends
`dialog.answered` {dialog_id} to that channel. Either way the waiter then reads the
dialog's row, which is the truth; a lost wake-up only delays it to its expiry,
where it finds the answer all the same.
"""

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from chat.models import Dialog, DialogKind, DialogStatus, Message, MessageStatus, new_id
from chat.services import broadcast
from functions.models import Function
from functions.services.context import CallContext
from functions.services.events import Event, EventError, EventRecorder, parse_event

log = logging.getLogger(__name__)

DIALOG_OPENED = "dialog.opened"
DIALOG_CLOSED = "dialog.closed"
DIALOG_ANSWERED = "dialog.answered"
DIALOG_PRESENCE = "dialog.presence"
DIALOG_HERE = "dialog.here"
# How long a request over the API waits for one of the chat's pages to say it is open.
PRESENCE_SECONDS = 1.0
DIALOG_KINDS = frozenset(DialogKind.values)

# Open WebUI's answer to an event call nobody answered (socket/main.py), word for word:
# plugins test for a dict with "error", and some show its text.
TIMED_OUT = {"error": "Event call timed out. The browser tab may be inactive or closed."}
# Input types a page may draw (Open WebUI passes data.type to an <input>).
INPUT_TYPES = frozenset({"text", "password", "email", "number", "url", "tel", "search"})
MAX_TEXT = 20_000
MAX_CODE = 1_000_000
MAX_ANSWER = 200_000

Caller = Callable[[dict], Awaitable[Any]]


# Reading and writing the records (sync).


def dialog_timeout_for(function_id: str) -> float:
    """Seconds a dialog of this function waits: its frontmatter's `dialog_timeout`
    (seconds, > 0), or FNPLATFORM_DIALOG_TIMEOUT_SECONDS."""
    default = float(settings.FNPLATFORM_DIALOG_TIMEOUT_SECONDS)
    meta = Function.objects.filter(pk=function_id).values_list("meta", flat=True).first()
    manifest = (meta or {}).get("manifest") if isinstance(meta, dict) else None
    raw = manifest.get("dialog_timeout") if isinstance(manifest, dict) else None
    try:
        seconds = float(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        log.warning("Function %s has a dialog_timeout that is not a number: %r", function_id, raw)
        return default
    return seconds if 0 < seconds <= 7 * 24 * 3600 else default


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    return "" if value is None else str(value)[:limit]


def dialog_open(
    *,
    id: str,
    user_id: Any,
    chat_id: str,
    message_id: str,
    function_id: str,
    event: Event,
    waiter: str,
    runner: str = "",
    emitted: bool = False,
) -> Dialog:
    """Store a pending dialog for a plugin's question (an Event of a DIALOG_KINDS type),
    or (`emitted`) an "execute" script it emitted."""
    data = event.data if isinstance(event.data, dict) else {}
    input_type = _text(data.get("type"), 32).lower()
    now = timezone.now()
    return Dialog.objects.create(
        id=id,
        chat_id=chat_id,
        message_id=message_id,
        user_id=user_id,
        function_id=function_id,
        kind=event.type,
        title=_text(data.get("title")),
        message=_text(data.get("message")),
        placeholder=_text(data.get("placeholder")),
        value=_text(data.get("value")),
        input_type=input_type if input_type in INPUT_TYPES else "",
        code=_text(data.get("code"), MAX_CODE),
        waiter=waiter,
        runner=runner,
        emitted=emitted,
        created_at=now,
        expires_at=now + timedelta(seconds=dialog_timeout_for(function_id)),
    )


def _dead(now) -> Q:
    """Pending dialogs whose time is up."""
    return Q(status=DialogStatus.PENDING) & Q(expires_at__lte=now)


def _orphans(dialogs: list[Dialog], now) -> list[str]:
    """The ids of run dialogs whose message no run writes any more."""
    asked_by_runs = [d for d in dialogs if d.runner]
    if not asked_by_runs:
        return []
    alive = set(
        Message.objects.filter(
            chat_id__in={d.chat_id for d in asked_by_runs},
            message_id__in={d.message_id for d in asked_by_runs},
            status=MessageStatus.STREAMING,
            lease_expires_at__gt=now,
        ).values_list("chat_id", "message_id", "runner")
    )
    return [d.id for d in asked_by_runs if (d.chat_id, d.message_id, d.runner) not in alive]


def dialogs_pending_for(*, user, chat_id: str) -> list[Dialog]:
    """The user's open dialogs of the chat, oldest first. Those nobody can answer any
    more are marked expired first (so a reload after the server restarted shows none)."""
    now = timezone.now()
    mine = Dialog.objects.filter(chat_id=chat_id, user_id=user.pk, status=DialogStatus.PENDING)
    mine.filter(_dead(now)).update(status=DialogStatus.EXPIRED)
    pending = list(mine.defer("code", "answer"))
    orphans = _orphans(pending, now)
    if orphans:
        Dialog.objects.filter(pk__in=orphans, status=DialogStatus.PENDING).update(
            status=DialogStatus.EXPIRED
        )
    return [d for d in pending if d.id not in orphans]


def dialogs_expire(*, ids: list[str]) -> list[Dialog]:
    """Expire those of these dialogs still pending; return them, expired."""
    pending = list(Dialog.objects.filter(pk__in=ids, status=DialogStatus.PENDING))
    expired = Dialog.objects.filter(
        pk__in=[d.pk for d in pending], status=DialogStatus.PENDING
    ).update(status=DialogStatus.EXPIRED)
    if expired != len(pending):  # some were answered meanwhile: only tell of the rest
        still = set(
            Dialog.objects.filter(
                pk__in=[d.pk for d in pending], status=DialogStatus.EXPIRED
            ).values_list("pk", flat=True)
        )
        pending = [d for d in pending if d.pk in still]
    for dialog in pending:
        dialog.status = DialogStatus.EXPIRED
    return pending


def dialogs_of_messages(messages: list[Message]) -> list[Dialog]:
    """Expire the pending dialogs of these answers (their runs were interrupted)."""
    ids: list[str] = []
    for message in messages:
        ids += Dialog.objects.filter(
            chat_id=message.chat_id, message_id=message.message_id, status=DialogStatus.PENDING
        ).values_list("pk", flat=True)
    return dialogs_expire(ids=ids) if ids else []


def _answer_of(dialog: Dialog, answer: Any, cancel: bool) -> tuple[str, Any]:
    """The status and the stored answer of a reply to this dialog; ValidationError for
    one that does not fit its kind."""
    if cancel:
        return DialogStatus.CANCELLED, False
    if dialog.kind == DialogKind.CONFIRMATION:
        return DialogStatus.ANSWERED, True
    if dialog.kind == DialogKind.INPUT:
        if not isinstance(answer, str):
            raise ValidationError("An answer must be text.", code="invalid_answer")
        if len(answer) > MAX_ANSWER:
            raise ValidationError(f"An answer has at most {MAX_ANSWER} characters.")
        return DialogStatus.ANSWERED, answer
    if len(repr(answer)) > MAX_ANSWER:
        raise ValidationError("The script's result is too large.", code="invalid_answer")
    return DialogStatus.ANSWERED, answer


def dialog_get_for(*, user, dialog_id: str, chat_id: str | None = None) -> Dialog:
    """One of the user's dialogs (of that chat, when given); Dialog.DoesNotExist for
    anyone else's, as for a missing one."""
    dialogs = Dialog.objects.filter(pk=str(dialog_id), user_id=user.pk)
    if chat_id is not None:
        dialogs = dialogs.filter(chat_id=chat_id)
    dialog = dialogs.defer("code").first()
    if dialog is None:
        raise Dialog.DoesNotExist("No such question.")
    return dialog


def dialog_answer(
    *, user, dialog_id: str, answer: Any = None, cancel: bool = False, chat_id: str | None = None
) -> Dialog:
    """Answer (or, `cancel`, decline) one of the user's pending dialogs: the first
    answer wins. Tell every page it closed, and wake the plugin that waits (here or in
    another process). Raise Dialog.DoesNotExist for another user's dialog, and
    ValidationError: "dialog_closed" when it was answered, cancelled or expired
    already (its time up counts, whether or not anyone marked it), "invalid_answer"
    for an answer that does not fit its kind. Call it off the event loop."""
    dialog = dialog_get_for(user=user, dialog_id=dialog_id, chat_id=chat_id)
    status, value = _answer_of(dialog, answer, cancel)
    now = timezone.now()
    won = Dialog.objects.filter(
        pk=dialog.pk, status=DialogStatus.PENDING, expires_at__gt=now
    ).update(status=status, answer=value, answered_at=now)
    if not won:
        raise ValidationError("This question is closed already.", code="dialog_closed")
    dialog.status, dialog.answer, dialog.answered_at = status, value, now
    async_to_sync(dialog_closed)(dialog)
    return dialog


# Who runs an "execute" script (dialog_claim).
CLAIMED, MINE, ELSEWHERE, CLOSED = "claimed", "mine", "elsewhere", "closed"


def dialog_claim(*, user, dialog_id: str, tab: str) -> str:
    """Let the page `tab` run the user's pending "execute" dialog, unless another page
    runs it: CLAIMED (it is this page's now), MINE (it was already: the page
    reconnected), ELSEWHERE (another page runs it), CLOSED (it waits no more, or is
    not the user's)."""
    waiting = Dialog.objects.filter(
        pk=str(dialog_id),
        user_id=user.pk,
        kind=DialogKind.EXECUTE,
        status=DialogStatus.PENDING,
        expires_at__gt=timezone.now(),
    )
    # A conditional UPDATE: of two pages claiming at once, one wins.
    if waiting.filter(claimed_by="").update(claimed_by=tab):
        return CLAIMED
    holder = waiting.values_list("claimed_by", flat=True).first()
    if holder is None:
        return CLOSED
    return MINE if holder == tab else ELSEWHERE


def dialogs_release(*, user, chat_id: str, tab: str) -> list[Dialog]:
    """The page `tab` closed: the chat's scripts it ran and did not finish wait for
    another page. Those released, to offer again."""
    held = Dialog.objects.filter(
        chat_id=chat_id, user_id=user.pk, claimed_by=tab, status=DialogStatus.PENDING
    )
    ids = list(held.values_list("pk", flat=True))
    if not ids:
        return []
    Dialog.objects.filter(pk__in=ids, claimed_by=tab, status=DialogStatus.PENDING).update(
        claimed_by=""
    )
    released = Dialog.objects.filter(pk__in=ids, claimed_by="", status=DialogStatus.PENDING)
    return list(released.defer("code", "answer"))


def _settle(dialog_id: str) -> Dialog | None:
    """The dialog as its waiter ends it: expired now if still pending (nobody answered
    in time). A password's answer is not kept once read. None when it is gone (its
    chat deleted)."""
    Dialog.objects.filter(pk=dialog_id, status=DialogStatus.PENDING).update(
        status=DialogStatus.EXPIRED
    )
    dialog = Dialog.objects.filter(pk=dialog_id).defer("code").first()
    if dialog is not None and dialog.input_type == "password" and dialog.answer is not None:
        Dialog.objects.filter(pk=dialog_id).update(answer=None)
    return dialog


def dialog_result(dialog: Dialog | None) -> Any:
    """What the plugin's `__event_call__` returns for a dialog that ended."""
    if dialog is None or dialog.status in (DialogStatus.EXPIRED, DialogStatus.PENDING):
        return dict(TIMED_OUT)
    if dialog.status == DialogStatus.CANCELLED:
        return False
    return dialog.answer


# Telling the pages.


def dialog_public(dialog: Dialog) -> dict[str, Any]:
    """What a page draws of a dialog (never its answer; execute's code is served by the
    sandbox route)."""
    fields = ("id", "kind", "title", "message", "placeholder", "value", "input_type")
    return {key: getattr(dialog, key) for key in fields} | {
        "status": str(dialog.status),
        "function_id": dialog.function_id,
    }


def _groups(dialog: Dialog) -> list[str]:
    return [broadcast.chat_group(dialog.chat_id), broadcast.user_group(dialog.user_id)]


def _message(kind: str, of: Dialog, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "chat_id": of.chat_id,
        "message_id": of.message_id,
        "dialog_id": of.id,
        "seq": None,
        **fields,
    }


async def dialog_opened(dialog: Dialog) -> None:
    await broadcast.publish(
        _groups(dialog), _message(DIALOG_OPENED, dialog, dialog=dialog_public(dialog))
    )


async def dialog_closed(dialog: Dialog) -> None:
    """Tell the pages the dialog closed, and wake its waiter (here, or over the layer)."""
    try:
        await broadcast.publish(
            _groups(dialog), _message(DIALOG_CLOSED, dialog, status=str(dialog.status))
        )
    except Exception:
        log.exception("Could not tell the pages that dialog %s closed", dialog.id)
    if not wake_local(dialog.id) and dialog.waiter:
        try:
            await broadcast.send(dialog.waiter, {"type": DIALOG_ANSWERED, "dialog_id": dialog.id})
        except Exception:
            # Its waiter finds the answer in the row when its time is up.
            log.exception("Could not wake the waiter of dialog %s", dialog.id)


# Waiting (async): the waiters of this process, and its listeners.

_waiting: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
_waiting_lock = threading.Lock()


def _expect(dialog_id: str) -> asyncio.Future:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    with _waiting_lock:
        _waiting[dialog_id] = (loop, future)
    return future


def _forget(dialog_id: str) -> None:
    with _waiting_lock:
        _waiting.pop(dialog_id, None)


def _set(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def wake_local(dialog_id: str) -> bool:
    """Wake the waiter of the dialog if it waits in this process (from any thread);
    whether it does. (Answers call this; the listener, woken from elsewhere, too.)"""
    return _wake_here(dialog_id)


def _wake_here(dialog_id: str) -> bool:
    with _waiting_lock:
        found = _waiting.get(dialog_id)
    if found is None:
        return False
    loop, future = found
    try:
        loop.call_soon_threadsafe(_set, future)
    except RuntimeError:  # its loop closed: nobody waits there any more
        return False
    return True


class DialogListener:
    """The channel on which other processes wake this event loop's waiters. Its
    receive is never cancelled (see chat.services.run_manager: with Redis, a cancelled
    receive can lose the message it was handed)."""

    def __init__(self) -> None:
        self.channel = ""
        self._task: asyncio.Task | None = None
        # Presence probes waiting for a page's reply, by probe id.
        self.probes: dict[str, asyncio.Future] = {}

    async def open(self) -> str:
        if self._task is None:
            self.channel = await get_channel_layer().new_channel()
            self._task = asyncio.create_task(self._listen(), name="dialog-listener")
        return self.channel

    async def _listen(self) -> None:
        layer = get_channel_layer()
        while True:
            try:
                message = await layer.receive(self.channel)
                if message.get("type") == DIALOG_ANSWERED:
                    _wake_here(str(message.get("dialog_id")))
                elif message.get("type") == DIALOG_HERE:
                    probe = self.probes.get(str(message.get("probe")))
                    if probe is not None:
                        _set(probe)
            except Exception:
                log.exception("Dialog listener %s could not take a message", self.channel)
                await asyncio.sleep(1)


_listeners: dict[asyncio.AbstractEventLoop, DialogListener] = {}


async def dialog_listener() -> DialogListener:
    """The listener of the running event loop, listening."""
    loop = asyncio.get_running_loop()
    for old in [other for other in _listeners if other.is_closed()]:
        del _listeners[old]
    listener = _listeners.setdefault(loop, DialogListener())
    await listener.open()
    return listener


_background: set[asyncio.Task] = set()


def _spawn(coro) -> None:
    task = asyncio.create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _expire_and_tell(ids: list[str]) -> None:
    try:
        for dialog in await database_sync_to_async(dialogs_expire)(ids=ids):
            await dialog_closed(dialog)
    except Exception:
        log.exception("Could not expire the dialogs %s", ids)


async def dialog_ask(
    *,
    user_id: Any,
    chat_id: str,
    message_id: str,
    function_id: str,
    event: Event,
    runner: str = "",
    opened: Callable[[str], None] | None = None,
) -> Any:
    """Open a dialog for the plugin's question (an Event of a DIALOG_KINDS type), tell
    the chat's pages, and wait for its end: what the plugin's `__event_call__` returns
    (dialog_result). Cancelled (the run stopped), the dialog is expired and the pages
    told. `opened(dialog_id)` is called once the dialog is stored."""
    listener = await dialog_listener()
    dialog_id = new_id()
    woken = _expect(dialog_id)
    try:
        dialog = await database_sync_to_async(dialog_open)(
            id=dialog_id,
            user_id=user_id,
            chat_id=chat_id,
            message_id=message_id,
            function_id=function_id,
            event=event,
            waiter=listener.channel,
            runner=runner,
        )
        if opened is not None:
            opened(dialog_id)
        await dialog_opened(dialog)
        wait = (dialog.expires_at - timezone.now()).total_seconds()
        # Its time up, the row says whether an answer came all the same.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken, max(wait, 0))
        ended = await database_sync_to_async(_settle)(dialog_id)
        if ended is not None and ended.status == DialogStatus.EXPIRED:
            await dialog_closed(ended)
        return dialog_result(ended)
    except asyncio.CancelledError:
        _spawn(_expire_and_tell([dialog_id]))
        raise
    finally:
        _forget(dialog_id)


async def dialog_post(
    *, user_id: Any, chat_id: str, message_id: str, function_id: str, event: Event
) -> Dialog:
    """Store an "execute" script the plugin emitted (nothing waits for its value) and
    tell the chat's pages: one of them runs it, now or within its timeout."""
    dialog = await database_sync_to_async(dialog_open)(
        id=new_id(),
        user_id=user_id,
        chat_id=chat_id,
        message_id=message_id,
        function_id=function_id,
        event=event,
        waiter="",
        emitted=True,
    )
    await dialog_opened(dialog)
    return dialog


async def dialogs_offer(dialogs: list[Dialog]) -> None:
    """Tell the pages these dialogs wait (again): scripts a closed page let go of."""
    for dialog in dialogs:
        await dialog_opened(dialog)


async def page_open(chat_id: str, *, wait: float | None = None) -> bool:
    """Whether one of the chat's pages is open now (in any process): it answers a probe
    sent to the chat's group within `wait` (PRESENCE_SECONDS) seconds."""
    listener = await dialog_listener()
    probe = new_id()
    future = listener.probes[probe] = asyncio.get_running_loop().create_future()
    message = {
        "type": DIALOG_PRESENCE,
        "chat_id": chat_id,
        "reply_to": listener.channel,
        "probe": probe,
    }
    try:
        await broadcast.publish([broadcast.chat_group(chat_id)], message)
        await asyncio.wait_for(future, PRESENCE_SECONDS if wait is None else wait)
        return True
    except TimeoutError:
        return False
    finally:
        listener.probes.pop(probe, None)


class DialogAsker:
    """The dialogs one run (or one action call) asks about one answer of a chat.
    `only_if_open`: a request over the API, which asks only a page that is open."""

    def __init__(
        self,
        *,
        user_id: Any,
        chat_id: str,
        message_id: str,
        function_id: str,
        runner: str = "",
        only_if_open: bool = False,
    ) -> None:
        self.user_id, self.chat_id, self.message_id = user_id, chat_id, message_id
        self.function_id, self.runner, self.only_if_open = function_id, runner, only_if_open
        self.asked: list[str] = []

    async def will_ask(self) -> bool:
        """Whether to ask the user (else the question is answered as with no session)."""
        return not self.only_if_open or await page_open(self.chat_id)

    async def ask(self, event: Event) -> Any:
        return await dialog_ask(
            user_id=self.user_id,
            chat_id=self.chat_id,
            message_id=self.message_id,
            function_id=self.function_id,
            event=event,
            runner=self.runner,
            opened=self.asked.append,
        )

    async def post(self, raw: Any) -> None:
        """An event the plugin emitted: an "execute" script (a valid event, asked of an
        open page over the API) is posted to the chat's pages; others are no dialog."""
        if not isinstance(raw, dict) or raw.get("type") != DialogKind.EXECUTE:
            return
        try:
            event = parse_event(raw)
        except EventError:
            return  # recorded as rejected, as any invalid event
        if not await self.will_ask():
            # Over the API with no page of the chat open: as in Open WebUI, no page
            # runs it (the client has it among the events).
            log.debug("No page of chat %s is open to run the script", self.chat_id)
            return
        try:
            await dialog_post(
                user_id=self.user_id,
                chat_id=self.chat_id,
                message_id=self.message_id,
                function_id=self.function_id,
                event=event,
            )
        except Exception:
            # The plugin's emit still succeeds (its event was recorded): only the
            # page's script is lost, and said so here.
            log.exception("Could not post the script %s emitted", self.function_id)

    async def close(self) -> None:
        """The run or action ended: its dialogs still open expire (their waiters, if
        any are left, get TIMED_OUT), and the pages are told."""
        if self.asked:
            ids, self.asked = self.asked, []
            await _expire_and_tell(ids)


def dialog_caller(
    call: Caller, *, record: Callable[[dict], Awaitable[None]], asker: DialogAsker
) -> Caller:
    """An `event_call` that asks the user through dialogs: the dialog types (a valid
    event) are recorded with `record` (as the recorder's `call` records them) and
    asked through `asker`; anything else goes to `call` as before."""

    async def ask(raw: dict) -> Any:
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind not in DIALOG_KINDS:
            return await call(raw)
        try:
            event = parse_event(raw)
        except EventError:
            return await call(raw)  # recorded as rejected, and answered as ever
        if not await asker.will_ask():
            return await call(raw)  # over the API with no page open: as ever
        await record(raw)
        return await asker.ask(event)

    return ask


def hear_events(
    context: CallContext,
    recorder: EventRecorder,
    *,
    asker: DialogAsker,
    took: Callable[[], Awaitable[None]],
) -> None:
    """Route a call's events through its chat (a run's, or an action's on a message):
    after each event the recorder takes, `took()` (the listener folds and tells what
    was recorded); the questions become dialogs through `asker`, told as asked; an
    emitted "execute" script is posted to the chat's pages."""
    emit, call = context.event_emitter, context.event_call

    async def record(raw: dict) -> None:
        await recorder.emit(raw)
        await took()  # the question is told as asked, not once answered

    asking = dialog_caller(call, record=record, asker=asker) if call is not None else None

    async def tee_emit(raw: dict) -> None:
        if emit is not None:
            await emit(raw)
        await took()
        await asker.post(raw)  # an emitted script runs on a page

    async def tee_call(raw: dict) -> Any:
        answer = await asking(raw)
        await took()
        return answer

    context.event_emitter = tee_emit
    if asking is not None:
        context.event_call = tee_call


async def dialogs_interrupted(messages: list[Message]) -> None:
    """The run manager's sweep found these answers' runs dead: expire their dialogs."""
    if not messages:
        return
    for dialog in await database_sync_to_async(dialogs_of_messages)(messages):
        await dialog_closed(dialog)
