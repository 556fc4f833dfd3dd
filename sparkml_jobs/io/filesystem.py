"""Every user path goes through here: Hadoop's ``FileSystem``, reached through the JVM gateway.

A user's path is a Hadoop path: ``hdfs://``, ``s3a://``, ``gs://``, ``abfs://``, ``viewfs://``,
``file://`` or scheme-less, which resolves against ``fs.defaultFS`` and the working directory
exactly as Spark's own readers and writers resolve it (the same ``Path.getFileSystem`` with the
session's Hadoop configuration). So a model written by ``--output /models/daily`` lands where
Spark's Parquet writer would put it, on HDFS on an HDFS cluster and on the local disk in local
mode, and every scheme follows one code path.

Directories are moved between the user's file system and a local scratch directory whole
(``copyFromLocalFile`` / ``copyToLocalFile``), so the code that writes a model or a report works on
plain local files and never on a user path. Local ``open()``/``os`` in the rest of the package is
for scratch files only.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkml_jobs.errors import InputError

# Files small enough to move as bytes through the gateway (JSON, TOML, CSV of centres).
SMALL_FILE_BYTES = 64 * 2**20


class FileSystemError(InputError):
    """A refused or failed file-system operation, said in one line (exit code 2)."""


@dataclass(frozen=True)
class Status:
    """What a path is: ``kind`` is ``"file"``, ``"dir"`` or ``"missing"``."""

    kind: str
    length: int = 0
    modified_ms: int = 0


def java_error(exc: BaseException) -> tuple[str, str]:
    """(simple Java class name, message) of a Py4J error, or of any other exception."""
    java = getattr(exc, "java_exception", None)
    if java is None:
        return type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = str(java.getClass().getSimpleName())
    message = str(java.getMessage() or "").strip()
    return name, message.splitlines()[0] if message else ""


def explain(action: str, path: str, exc: BaseException) -> FileSystemError:
    """A one-line error for a failed operation: permission denied, not found, exists, ..."""
    name, message = java_error(exc)
    reason = {
        "AccessControlException": "permission denied",
        "AccessDeniedException": "permission denied",
        "FileNotFoundException": "not found",
        "FileAlreadyExistsException": "path exists",
        "ParentNotDirectoryException": "a parent is a file",
        "UnsupportedFileSystemException": "no file system for this scheme",
    }.get(name)
    if reason is None and "ermission denied" in message:
        reason = "permission denied"
    if reason is None and "No FileSystem for scheme" in message:
        reason = "no file system for this scheme (add the connector with --packages)"
    detail = reason or f"{name}: {message}" if message or reason else name
    return FileSystemError(f"cannot {action} {path}: {detail}")


class HadoopFileSystem:
    """A thin, typed view of Hadoop's ``FileSystem`` API for one Spark session.

    Parameters
    ----------
    spark : SparkSession
        Its Hadoop configuration resolves schemes, ``fs.defaultFS`` and credentials.
    """

    def __init__(self, spark: Any):
        sc = spark.sparkContext
        self._jvm = sc._jvm
        self._gateway = sc._gateway
        self._conf = sc._jsc.hadoopConfiguration()

    # ---------------------------------------------------------------- paths

    def _path(self, path: str):
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def _fs(self, jpath):
        return jpath.getFileSystem(self._conf)

    def qualify(self, path: str) -> str:
        """The absolute URI ``path`` resolves to (scheme-less → ``fs.defaultFS``), as Spark's."""
        try:
            jpath = self._path(path)
            return str(self._fs(jpath).makeQualified(jpath).toString())
        except Exception as exc:  # bad URI, unknown scheme
            raise explain("resolve", path, exc) from exc

    def parent(self, path: str) -> str:
        parent = self._path(self.qualify(path)).getParent()
        if parent is None:
            raise FileSystemError(f"{path}: the root cannot be an output")
        return str(parent.toString())

    def name(self, path: str) -> str:
        return str(self._path(self.qualify(path)).getName())

    def child(self, parent: str, name: str) -> str:
        return str(self._jvm.org.apache.hadoop.fs.Path(self._path(parent), name).toString())

    # ---------------------------------------------------------------- queries

    def status(self, path: str) -> Status:
        jpath = self._path(path)
        try:
            st = self._fs(jpath).getFileStatus(jpath)
        except Exception as exc:
            if java_error(exc)[0] == "FileNotFoundException":
                return Status("missing")
            raise explain("read the status of", path, exc) from exc
        kind = "dir" if st.isDirectory() else "file"
        return Status(kind, int(st.getLen()), int(st.getModificationTime()))

    def exists(self, path: str) -> bool:
        return self.status(path).kind != "missing"

    def glob_exists(self, pattern: str) -> bool:
        """Whether ``pattern`` (a path or a glob) matches anything."""
        jpath = self._path(pattern)
        try:
            statuses = self._fs(jpath).globStatus(jpath)
        except Exception as exc:
            raise explain("list", pattern, exc) from exc
        return statuses is not None and len(statuses) > 0

    def local_paths(self, uris: list[str]) -> list[str] | None:
        """The local file each URI resolves to (``file:``, or a ``viewfs://`` mount of one), or
        ``None`` when any of them lives elsewhere (HDFS, an object store): readers that bypass
        Hadoop (pyarrow in a task) may only open what this returns."""
        local = []
        for uri in uris:
            jpath = self._path(uri)
            try:
                resolved = self._fs(jpath).resolvePath(jpath).toUri()
            except Exception:  # vanished since the listing: Spark's reader will say so
                return None
            if str(resolved.getScheme()) != "file":
                return None
            local.append(str(self._jvm.java.nio.file.Paths.get(resolved).toString()))
        return local

    def listing(self, directory: str) -> list[tuple[str, Status]]:
        """Every child of ``directory`` as ``(URI, status)``, sorted by URI (``[]`` if missing)."""
        jpath = self._path(directory)
        try:
            statuses = self._fs(jpath).listStatus(jpath)
        except Exception as exc:
            if java_error(exc)[0] == "FileNotFoundException":
                return []
            raise explain("list", directory, exc) from exc
        children = []
        for st in statuses:
            kind = "dir" if st.isDirectory() else "file"
            status = Status(kind, int(st.getLen()), int(st.getModificationTime()))
            children.append((str(st.getPath().toString()), status))
        return sorted(children)

    def list_names(self, directory: str) -> list[str]:
        jpath = self._path(directory)
        try:
            return sorted(str(s.getPath().getName()) for s in self._fs(jpath).listStatus(jpath))
        except Exception as exc:
            if java_error(exc)[0] == "FileNotFoundException":
                return []
            raise explain("list", directory, exc) from exc

    # ---------------------------------------------------------------- small files

    def read_bytes(self, path: str) -> bytes:
        st = self.status(path)
        if st.kind == "missing":
            raise FileSystemError(f"file not found: {path}")
        if st.kind == "dir":
            raise FileSystemError(f"{path} is a directory, expected a file")
        if st.length > SMALL_FILE_BYTES:
            raise FileSystemError(f"{path}: {st.length} bytes is too large to read as a small file")
        jpath = self._path(path)
        try:
            stream = self._fs(jpath).open(jpath)
            try:
                return bytes(stream.readAllBytes())
            finally:
                stream.close()
        except Exception as exc:
            raise explain("read", path, exc) from exc

    def read_text(self, path: str) -> str:
        try:
            return self.read_bytes(path).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileSystemError(f"{path} is not UTF-8 text ({exc.reason})") from exc

    def write_bytes(self, path: str, payload: bytes, *, overwrite: bool) -> None:
        """Create ``path`` with ``payload``; with ``overwrite=False`` fail if it exists."""
        jpath = self._path(path)
        try:
            stream = self._fs(jpath).create(jpath, overwrite)
            try:
                stream.write(bytearray(payload))
            finally:
                stream.close()
        except Exception as exc:
            raise explain("write", path, exc) from exc

    def create_exclusive(self, path: str, payload: bytes) -> bool:
        """Create ``path`` only if it does not exist; ``False`` when another writer has it.

        Atomic where the store can do it: HDFS's ``create(overwrite=false)`` is decided by the
        NameNode; Hadoop's local file system only checks then creates, so a path that resolves
        to the local disk (``file://``, or a ``viewfs://`` mount of it) is claimed with
        ``java.nio.file.Files.createFile`` (``O_EXCL``). Object stores give no such guarantee
        unless their connector offers conditional writes (see the README).
        """
        jpath = self._path(path)
        try:
            resolved_parent = self._fs(jpath).resolvePath(jpath.getParent())
            uri = resolved_parent.toUri()
            if str(uri.getScheme()) == "file":
                nio = self._jvm.java.nio.file
                local = nio.Paths.get(uri).resolve(str(jpath.getName()))
                no_attributes = self._gateway.new_array(
                    self._jvm.java.nio.file.attribute.FileAttribute, 0
                )
                nio.Files.createFile(local, no_attributes)
                self.write_bytes(path, payload, overwrite=True)
                return True
            self.write_bytes(path, payload, overwrite=False)
        except FileSystemError as exc:
            if "path exists" in str(exc) or self.exists(path):
                return False
            raise
        except Exception as exc:
            if java_error(exc)[0] == "FileAlreadyExistsException":
                return False
            raise explain("create", path, exc) from exc
        return True

    # ---------------------------------------------------------------- changes

    def mkdirs(self, path: str) -> None:
        jpath = self._path(path)
        try:
            if not self._fs(jpath).mkdirs(jpath):
                raise FileSystemError(f"cannot create directory {path}")
        except FileSystemError:
            raise
        except Exception as exc:
            raise explain("create directory", path, exc) from exc

    def delete(self, path: str, recursive: bool = True) -> None:
        jpath = self._path(path)
        try:
            self._fs(jpath).delete(jpath, recursive)
        except Exception as exc:
            raise explain("delete", path, exc) from exc

    def rename(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``, which must not exist (never *into* a directory)."""
        if self.exists(target):
            raise FileSystemError(f"cannot rename into {target}: path exists")
        src, dst = self._path(source), self._path(target)
        try:
            done = self._fs(src).rename(src, dst)
        except Exception as exc:
            raise explain("rename to", target, exc) from exc
        if not done:
            raise FileSystemError(f"cannot rename {source} to {target}")

    def upload_dir(self, local: Path, target: str) -> None:
        """Copy a local directory to ``target`` (which must not exist)."""
        src, dst = self._path(local.resolve().as_uri()), self._path(target)
        try:
            self._fs(dst).copyFromLocalFile(False, False, src, dst)
        except Exception as exc:
            raise explain("write", target, exc) from exc

    @contextlib.contextmanager
    def local_copy(self, directory: str) -> Iterator[Path]:
        """A scratch local copy of the directory ``directory``, removed afterwards."""
        scratch = Path(tempfile.mkdtemp(prefix="sparkml-read-"))
        try:
            src = self._path(directory)
            dst = self._path((scratch / "copy").as_uri())
            try:
                self._fs(src).copyToLocalFile(False, src, dst, True)
            except Exception as exc:
                raise explain("read", directory, exc) from exc
            yield scratch / "copy"
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def for_session(spark: Any) -> HadoopFileSystem:
    return HadoopFileSystem(spark)


def current() -> HadoopFileSystem:
    """The file system view of the active SparkSession (every job runs inside one)."""
    from pyspark.sql import SparkSession

    # the active session is per thread in the JVM; a job's helper threads use the one instantiated
    spark = SparkSession.getActiveSession() or SparkSession._instantiatedSession
    if spark is None:
        raise InputError("reading or writing a user path needs an active SparkSession")
    return HadoopFileSystem(spark)
