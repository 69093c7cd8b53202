"""Mirrors open_webui.models.files: `Files`, `FileForm`, `FileModel`, backed by chat.File.

Scoped to the calling user: bob's plugin reads and changes bob's files only; a
call made for an admin reaches everyone's. Paths are stored relative to
UPLOAD_DIR and handed back absolute, as upstream's local storage gives them.
Methods take upstream's `db` session argument and ignore it.
"""

import logging
from typing import Any

from django.db import IntegrityError, transaction
from pydantic import BaseModel, ConfigDict

from .._dual import dual
from ..storage.provider import relative_path, upload_dir
from ._owned import acting_pk, epoch, owned, owned_by

log = logging.getLogger(__name__)


class FileMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = None
    content_type: str | None = None
    size: int | None = None


class FileModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    hash: str | None = None
    filename: str
    path: str | None = None
    data: dict | None = None
    meta: dict | None = None
    access_control: dict | None = None
    created_at: int | None
    updated_at: int | None


class FileModelResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    user_id: str
    hash: str | None = None
    filename: str
    data: dict | None = None
    meta: FileMeta
    created_at: int
    updated_at: int | None = None


class FileMetadataResponse(BaseModel):
    id: str
    hash: str | None = None
    meta: dict
    created_at: int
    updated_at: int


class FileForm(BaseModel):
    id: str
    hash: str | None = None
    filename: str
    path: str
    data: dict = {}
    meta: dict = {}
    access_control: dict | None = None


def _rows():
    from chat.models import File

    return owned(File.objects.all())


def _absolute(path: str) -> str | None:
    return str(upload_dir() / path) if path else None


def to_file_model(row) -> FileModel:
    return FileModel(
        id=row.id,
        user_id=str(row.user_id),
        hash=row.hash or None,
        filename=row.filename,
        path=_absolute(row.path),
        data=row.data or {},
        meta=row.meta or {},
        created_at=epoch(row.created_at),
        updated_at=epoch(row.updated_at),
    )


def to_metadata(row) -> FileMetadataResponse:
    return FileMetadataResponse(
        id=row.id,
        hash=row.hash or None,
        meta=row.meta or {},
        created_at=epoch(row.created_at),
        updated_at=epoch(row.updated_at),
    )


def _form_fields(form: FileForm | dict) -> dict[str, Any]:
    form = form if isinstance(form, FileForm) else FileForm(**form)
    # A record must point inside the upload folder: pages will serve files by record.
    return {
        "id": form.id,
        "filename": form.filename,
        "path": relative_path(form.path) if form.path else "",
        "hash": form.hash or "",
        "data": dict(form.data or {}),
        "meta": dict(form.meta or {}),
    }


def _id_of(form: FileForm | dict) -> str:
    return str(form.get("id") if isinstance(form, dict) else form.id)


def _merge(id: str, field: str, values: dict) -> FileModel | None:
    with transaction.atomic():
        row = _rows().select_for_update().filter(pk=id).first()
        if row is None:
            return None
        setattr(row, field, {**(getattr(row, field) or {}), **dict(values)})
        row.save(update_fields=[field, "updated_at"])
    return to_file_model(row)


class FilesTable:
    @dual
    def insert_new_file(
        self, user_id: Any, form_data: FileForm | dict, db: Any = None
    ) -> FileModel | None:
        """Record a file for `user_id` (the caller, or anyone for an admin call)."""
        from chat.models import File

        pk = acting_pk(user_id)
        if pk is None:
            return None
        try:
            with transaction.atomic():
                row = File.objects.create(user_id=pk, **_form_fields(form_data))
        except IntegrityError:
            # Upstream answers None when the insert fails, e.g. for an id already in use.
            log.warning("file %s not recorded: the id is already in use", _id_of(form_data))
            return None
        return to_file_model(row)

    @dual
    def get_file_by_id(self, id: str, db: Any = None) -> FileModel | None:
        row = _rows().filter(pk=id).first()
        return to_file_model(row) if row else None

    @dual
    def get_file_by_id_and_user_id(self, id: str, user_id: Any, db: Any = None) -> FileModel | None:
        from chat.models import File

        row = owned_by(File.objects.all(), user_id).filter(pk=id).first()
        return to_file_model(row) if row else None

    @dual
    def get_file_metadata_by_id(self, id: str, db: Any = None) -> FileMetadataResponse | None:
        row = _rows().filter(pk=id).first()
        return to_metadata(row) if row else None

    @dual
    def get_files(self, db: Any = None) -> list[FileModel]:
        return [to_file_model(row) for row in _rows()]

    @dual
    def get_files_by_ids(self, ids: list[str], db: Any = None) -> list[FileModel]:
        return [to_file_model(row) for row in _rows().filter(pk__in=list(ids))]

    @dual
    def get_file_metadatas_by_ids(
        self, ids: list[str], db: Any = None
    ) -> list[FileMetadataResponse]:
        return [to_metadata(row) for row in _rows().filter(pk__in=list(ids))]

    @dual
    def get_files_by_user_id(self, user_id: Any, db: Any = None) -> list[FileModel]:
        from chat.models import File

        return [to_file_model(row) for row in owned_by(File.objects.all(), user_id)]

    @dual
    def update_file_hash_by_id(self, id: str, hash: str, db: Any = None) -> FileModel | None:
        row = _rows().filter(pk=id).first()
        if row is None:
            return None
        row.hash = hash or ""
        row.save(update_fields=["hash", "updated_at"])
        return to_file_model(row)

    @dual
    def update_file_data_by_id(self, id: str, data: dict, db: Any = None) -> FileModel | None:
        """Merge `data` into the file's data, as upstream does."""
        return _merge(id, "data", data)

    @dual
    def update_file_metadata_by_id(self, id: str, meta: dict, db: Any = None) -> FileModel | None:
        """Merge `meta` into the file's meta, as upstream does."""
        return _merge(id, "meta", meta)

    @dual
    def delete_file_by_id(self, id: str, db: Any = None) -> bool:
        """Delete the record (not the bytes: upstream leaves those to Storage.delete_file)."""
        deleted, _ = _rows().filter(pk=id).delete()
        return bool(deleted)


Files = FilesTable()
