"""Host-data shims (open_webui.models.users, utils.chat) from real plugin code."""

import pytest

from functions.services import runtime
from functions.services.context import CallContext
from functions.services.loader import load_source
from tests.support.inline import source_call

pytestmark = pytest.mark.django_db(transaction=True)

BOTH_STYLES = """
from open_webui.models.users import Users, UserModel
from apps.webui.models.users import Users as LegacyUsers

class Pipe:
    async def pipe(self, body, __user__):
        plain = Users.get_user_by_id(__user__["id"])
        awaited = await Users.get_user_by_id(__user__["id"])
        other = await Users.get_user_by_id(body["other"])
        count = Users.get_num_users()
        assert LegacyUsers is Users
        return f"{plain.email}|{awaited.email}|{other.email if other else None}|{count}"
"""

SYNC_STYLE = """
from open_webui.models.users import Users

class Pipe:
    def pipe(self, body, __user__):
        return Users.get_user_by_id(__user__["id"]).name
"""


def context_for(user) -> CallContext:
    role = "admin" if user.is_staff else "user"
    return CallContext(user={"id": str(user.pk), "email": user.email, "role": role})


async def answer(source: str, user, body: dict) -> str:
    call = source_call("shim", source)
    chunks = [c async for c in runtime.run_pipe(call, body, context_for(user))]
    return "".join(c.text for c in chunks)


async def test_users_work_awaited_and_not_and_only_show_the_caller(bob, alice):
    text = await answer(BOTH_STYLES, bob, {"other": str(alice.pk)})
    assert text == "bob@example.com|bob@example.com|None|1"


async def test_admin_callers_see_other_users(bob, alice):
    text = await answer(BOTH_STYLES, alice, {"other": str(bob.pk)})
    assert text == "alice@example.com|alice@example.com|bob@example.com|2"


async def test_sync_plugins_call_users_plainly_from_their_thread(bob):
    assert await answer(SYNC_STYLE, bob, {}) == "bob"


def test_config_paths_live_in_the_data_dir(settings):
    with load_source(
        "from open_webui.config import UPLOAD_DIR, DATA_DIR\nclass Pipe:\n"
        "    def pipe(self, body):\n        return str(UPLOAD_DIR)\n"
    ) as loaded:
        assert loaded.module.UPLOAD_DIR.parent == loaded.module.DATA_DIR
        assert loaded.module.UPLOAD_DIR.is_dir()
