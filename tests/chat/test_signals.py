"""chat.signals: at startup (after migrate), answers whose process died are interrupted."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from chat.models import Message, MessageStatus
from chat.services.chats import chat_create


@pytest.mark.django_db
def test_migrate_marks_answers_whose_lease_ran_out_interrupted(bob):
    chat = chat_create(user=bob, document={})
    lease = timezone.now() - timedelta(seconds=1)
    Message.objects.create(
        chat=chat,
        message_id="a",
        status=MessageStatus.STREAMING,
        content="so far",
        lease_expires_at=lease,
    )
    call_command("migrate", verbosity=0)
    message = Message.objects.get(message_id="a")
    assert (message.status, message.content) == ("interrupted", "so far")
