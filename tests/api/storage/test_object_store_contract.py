"""The object store contract, run on both backends: the filesystem and S3 (a real SeaweedFS).

Every test taking ``store`` runs once per backend; the few tests about one backend's own
mechanics (temporary files, timeouts) say so in their name. Stores are opened through
:func:`open_store`, so the URL parsing of the deployments is exercised too.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import urllib3
from minio import Minio
from pacs_api.settings import Settings
from pacs_common.storage import (
    FilesystemStore,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    S3Store,
    StoreError,
    open_store,
)
from pacs_common.storage.base import CHUNK_SIZE
from pacs_common.storage.s3 import DEFAULT_PART_SIZE

from tests.support.seaweedfs import SeaweedFS

MIB = 1024 * 1024
UNSAFE_KEYS = ["../x", "/abs", "a//b", "a/./b", "", "a/../b", "a/", ".", "..", "a b", "a\\b", "é"]


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    """An empty store: a directory, or a fresh bucket on the session's SeaweedFS."""
    if request.param == "filesystem":
        settings = Settings(store_url=f"file://{tmp_path / 'objects'}")
    else:
        seaweedfs: SeaweedFS = request.getfixturevalue("seaweedfs")
        settings = Settings(
            store_url=request.getfixturevalue("s3_bucket_url"),
            s3_access_key=seaweedfs.access_key,
            s3_secret_key=seaweedfs.secret_key,
        )
    opened = open_store(settings)
    try:
        yield opened
    finally:
        opened.close()


def pattern(size: int, seed: int = 0) -> bytes:
    """*size* bytes whose every 4 KiB block differs (so a misplaced range shows)."""
    block = bytes((seed + i) % 251 for i in range(4096))
    turns = ((n * 7) % 4096 for n in range(size // 4096 + 1))
    return b"".join(block[turn:] + block[:turn] for turn in turns)[:size]


def put_bytes(store: ObjectStore, key: str, data: bytes) -> None:
    store.put(key, io.BytesIO(data), len(data))


def files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


class ShortStream(io.RawIOBase):
    """A stream that fails mid-way, to tell source failures from store failures."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        raise ConnectionResetError("the client went away")


# -- put and read ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4096, CHUNK_SIZE + 17, 5 * MIB + 3])
def test_put_read_round_trip_exact_bytes(store: ObjectStore, size: int) -> None:
    """What ``put`` stores, ``read`` and ``stat`` give back exactly, from 0 bytes to several MiB."""
    data = pattern(size, seed=size)
    put_bytes(store, "studies/1.2/series/3.4/instances/5.6.dcm", data)
    assert store.read("studies/1.2/series/3.4/instances/5.6.dcm") == data
    assert store.stat("studies/1.2/series/3.4/instances/5.6.dcm") == ObjectInfo(
        "studies/1.2/series/3.4/instances/5.6.dcm", size
    )


def test_put_large_object_streams_back_in_chunks(store: ObjectStore) -> None:
    """An object larger than the S3 part size (a multipart upload) round-trips byte for byte,
    and ``open`` streams it in chunks of at most CHUNK_SIZE, including a range across parts."""
    size = 2 * DEFAULT_PART_SIZE + 8 * MIB + 5
    data = os.urandom(size)
    put_bytes(store, "big/object.dcm", data)

    digest = hashlib.sha256()
    chunk_sizes = []
    for chunk in store.open("big/object.dcm"):
        chunk_sizes.append(len(chunk))
        digest.update(chunk)
    assert digest.digest() == hashlib.sha256(data).digest()
    assert sum(chunk_sizes) == size and max(chunk_sizes) <= CHUNK_SIZE
    boundary = DEFAULT_PART_SIZE
    assert (
        store.read("big/object.dcm", (boundary - 7, boundary + 9))
        == data[boundary - 7 : boundary + 9]
    )
    assert store.stat("big/object.dcm").size == size


def test_s3_large_put_is_multipart(seaweedfs: SeaweedFS, s3_bucket_url: str) -> None:
    """On S3, an object above the part size goes up as a multipart upload (its ETag says
    ``-<parts>``) and one at the part size as a single PUT."""
    bucket = s3_bucket_url.rsplit("/", 1)[1]
    store = S3Store(
        seaweedfs.endpoint, bucket, seaweedfs.access_key, seaweedfs.secret_key, secure=False
    )
    http = urllib3.PoolManager()
    try:
        put_bytes(store, "multi", pattern(DEFAULT_PART_SIZE + 1))
        put_bytes(store, "single", pattern(DEFAULT_PART_SIZE))
        client = Minio(
            seaweedfs.endpoint,
            seaweedfs.access_key,
            seaweedfs.secret_key,
            secure=False,
            http_client=http,
        )
        assert str(client.stat_object(bucket, "multi").etag).endswith("-2")
        assert "-" not in str(client.stat_object(bucket, "single").etag)
    finally:
        store.close()
        http.clear()


def test_put_overwrite_replaces_object(store: ObjectStore) -> None:
    """A second ``put`` under a key replaces the object whole, longer or shorter."""
    put_bytes(store, "k.dcm", b"first version, rather long")
    put_bytes(store, "k.dcm", b"second")
    assert store.read("k.dcm") == b"second"
    assert store.stat("k.dcm").size == 6
    assert [info.key for info in store.list()] == ["k.dcm"]


def test_overwrite_is_atomic_for_concurrent_readers(store: ObjectStore) -> None:
    """Readers racing with overwrites see one whole version or the other, never a mix."""
    versions = [pattern(5 * MIB + 11, seed=1), pattern(5 * MIB + 11, seed=2)]
    put_bytes(store, "racy.dcm", versions[0])
    done = threading.Event()

    def overwrite() -> None:
        try:
            for n in range(12):
                put_bytes(store, "racy.dcm", versions[n % 2])
        finally:
            done.set()

    writer = threading.Thread(target=overwrite)
    writer.start()
    reads = 0
    try:
        while not done.is_set() or reads < 3:
            assert store.read("racy.dcm") in versions
            reads += 1
    finally:
        writer.join()


def test_put_reads_only_declared_length(store: ObjectStore) -> None:
    """``put`` consumes exactly *length* bytes and leaves the rest of the stream unread."""
    stream = io.BytesIO(b"0123456789tail")
    store.put("k", stream, 10)
    assert store.read("k") == b"0123456789"
    assert stream.tell() == 10


@pytest.mark.parametrize(
    ("given", "declared"),
    [(0, 1), (10, 20), (DEFAULT_PART_SIZE + MIB, DEFAULT_PART_SIZE + 3 * MIB)],
)
def test_put_short_stream_leaves_nothing(
    store: ObjectStore, tmp_path: Path, given: int, declared: int
) -> None:
    """A stream shorter than its declared length raises ValueError and stores nothing: no
    object (S3: the multipart upload is aborted) and no temporary file."""
    with pytest.raises(ValueError, match=f"ended after {given} of {declared} bytes"):
        store.put("a/b/short.dcm", io.BytesIO(pattern(given)), declared)
    assert not store.exists("a/b/short.dcm")
    assert list(store.list()) == []
    if isinstance(store, FilesystemStore):
        assert files_under(store.root) == []


def test_put_short_stream_keeps_previous_object(store: ObjectStore) -> None:
    """A failed overwrite leaves the previous object as it was."""
    put_bytes(store, "k.dcm", b"original")
    with pytest.raises(ValueError):
        store.put("k.dcm", io.BytesIO(b"new"), 100)
    assert store.read("k.dcm") == b"original"


def test_put_source_error_propagates_unchanged(store: ObjectStore) -> None:
    """An error reading the caller's stream is the caller's (not a StoreError) and stores
    nothing."""
    with pytest.raises(ConnectionResetError):
        store.put("k.dcm", io.BufferedReader(ShortStream()), 10)
    assert not store.exists("k.dcm")


def test_put_negative_length_refused(store: ObjectStore) -> None:
    """A negative length is a ValueError, not an empty object."""
    with pytest.raises(ValueError, match="negative length"):
        store.put("k.dcm", io.BytesIO(b""), -1)
    assert not store.exists("k.dcm")


# -- ranged reads and missing objects --------------------------------------------------------


def test_read_byte_ranges(store: ObjectStore) -> None:
    """Ranges read exactly ``data[start:end]`` (end exclusive): start, middle, end, whole,
    across chunks, empty, and clamped past the end of the object."""
    size = 2 * CHUNK_SIZE + MIB // 2
    data = pattern(size)
    put_bytes(store, "r.dcm", data)
    ranges = [
        (0, 10),
        (1000, 2000),
        (size - 10, size),
        (0, size),
        (3, CHUNK_SIZE * 2 + 5),
        (7, 7),
        (size - 5, size + 100),
        (size, size + 10),
        (size + 10, size + 20),
    ]
    for start, end in ranges:
        assert store.read("r.dcm", (start, end)) == data[start:end], (start, end)


def test_read_ranges_of_empty_object(store: ObjectStore) -> None:
    """A 0-byte object reads as nothing, whole or in any range."""
    put_bytes(store, "empty", b"")
    assert store.read("empty") == b""
    assert store.read("empty", (0, 10)) == b""
    assert store.read("empty", (0, 0)) == b""


def test_read_invalid_range_refused(store: ObjectStore) -> None:
    """A negative start or an end before the start is a ValueError."""
    put_bytes(store, "r", b"0123456789")
    for bad in [(-1, 5), (5, 3)]:
        with pytest.raises(ValueError, match="invalid byte range"):
            store.open("r", bad)


@pytest.mark.parametrize("byte_range", [None, (0, 10), (5, 5)])
def test_open_missing_key_raises_object_not_found(
    store: ObjectStore, byte_range: tuple[int, int] | None
) -> None:
    """``open`` of an absent key raises ObjectNotFound at once, before any iteration."""
    with pytest.raises(ObjectNotFound):
        store.open("studies/none.dcm", byte_range)


def test_key_prefix_is_not_an_object(store: ObjectStore) -> None:
    """A prefix of stored keys (a directory, on the filesystem) is not an object."""
    put_bytes(store, "a/b.dcm", b"x")
    with pytest.raises(ObjectNotFound):
        store.open("a")
    with pytest.raises(ObjectNotFound):
        store.stat("a")
    assert not store.exists("a")
    store.delete(["a"])
    assert store.read("a/b.dcm") == b"x"


def test_stat_and_exists(store: ObjectStore) -> None:
    """``stat`` gives the size, or raises ObjectNotFound; ``exists`` says which."""
    put_bytes(store, "s/k.dcm", b"12345")
    assert store.stat("s/k.dcm") == ObjectInfo("s/k.dcm", 5)
    assert store.exists("s/k.dcm")
    with pytest.raises(ObjectNotFound):
        store.stat("s/other.dcm")
    assert not store.exists("s/other.dcm")


def test_open_closed_early_releases_resources(store: ObjectStore) -> None:
    """Iterators closed early or abandoned release their file or connection: many of them in a
    row leave the store working, and a closed iterator yields nothing more."""
    put_bytes(store, "k", pattern(3 * CHUNK_SIZE))
    chunks = store.open("k")
    assert len(next(chunks)) == CHUNK_SIZE
    chunks.close()  # type: ignore[attr-defined]
    assert list(chunks) == []
    for _ in range(50):
        abandoned = store.open("k")
        next(abandoned)
        del abandoned
    assert store.read("k") == pattern(3 * CHUNK_SIZE)


# -- delete ----------------------------------------------------------------------------------


def test_delete_present_and_absent_keys(store: ObjectStore) -> None:
    """``delete`` removes present objects and ignores absent ones; others stay."""
    for key in ["x/1.dcm", "x/2.dcm", "y/3.dcm"]:
        put_bytes(store, key, b"data")
    store.delete(["x/1.dcm", "x/absent.dcm", "nowhere/at/all", "x/2.dcm"])
    assert [info.key for info in store.list()] == ["y/3.dcm"]
    store.delete([])
    store.delete(["x/1.dcm"])
    assert not store.exists("x/1.dcm")
    if isinstance(store, FilesystemStore):  # empty directories are pruned, the root stays
        assert not (store.root / "x").exists()
        assert store.root.is_dir()


def test_delete_with_unsafe_key_deletes_nothing(store: ObjectStore) -> None:
    """Keys are all checked before any is deleted."""
    put_bytes(store, "k", b"data")
    with pytest.raises(ValueError):
        store.delete(["k", "../etc/passwd"])
    assert store.exists("k")


# -- list ------------------------------------------------------------------------------------

LIST_KEYS = [
    "a-c",
    "a.b",
    "a/b",
    "a/c/d",
    "a0",
    "b",
    "studies/1.2/z.dcm",
    "studies/1.2.3/x.dcm",
    "studies/1.2.3.4/y.dcm",
    "studies/1.23/w.dcm",
]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", sorted(LIST_KEYS)),
        ("a", ["a-c", "a.b", "a/b", "a/c/d", "a0"]),
        ("a/", ["a/b", "a/c/d"]),
        ("a/c/d", ["a/c/d"]),
        ("studies/1.2", sorted(key for key in LIST_KEYS if key.startswith("studies/"))),
        ("studies/1.2/", ["studies/1.2/z.dcm"]),
        ("studies/1.2.3", ["studies/1.2.3.4/y.dcm", "studies/1.2.3/x.dcm"]),
        ("zzz", []),
        ("a/b/", []),
    ],
)
def test_list_prefix_in_key_order(store: ObjectStore, prefix: str, expected: list[str]) -> None:
    """``list`` gives exactly the keys starting with *prefix*, in string order of whole keys
    (``a-c`` < ``a.b`` < ``a/b`` < ``a0``: a "directory" sorts by its ``/``), with sizes."""
    for n, key in enumerate(LIST_KEYS):
        put_bytes(store, key, b"x" * n)
    listed = list(store.list(prefix))
    assert [info.key for info in listed] == expected
    assert all(info.size == LIST_KEYS.index(info.key) for info in listed)


def test_list_many_objects(store: ObjectStore) -> None:
    """More objects than one S3 listing page (1000) all list, once each, in key order."""
    keys = [f"studies/{n % 3}/series/{n % 7}/{n:05d}.dcm" for n in range(1100)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: put_bytes(store, key, key.encode()), keys))
    assert [info.key for info in store.list()] == sorted(keys)
    in_one_study = sorted(key for key in keys if key.startswith("studies/1/"))
    assert [info.key for info in store.list("studies/1/")] == in_one_study


def test_scan_streams_every_object_with_its_write_time(store: ObjectStore) -> None:
    """``scan`` gives each object under the prefix once (any order), with its size and a
    timezone-aware write time close to now (the sweep's grace period compares against it)."""
    before = datetime.now(UTC) - timedelta(minutes=5)
    for n, key in enumerate(LIST_KEYS):
        put_bytes(store, key, b"x" * n)
    scanned = list(store.scan("a"))
    assert sorted(info.key for info in scanned) == [k for k in LIST_KEYS if k.startswith("a")]
    for info in scanned:
        assert info.size == LIST_KEYS.index(info.key)
        assert info.modified is not None and info.modified.tzinfo is not None
        assert before <= info.modified <= datetime.now(UTC) + timedelta(minutes=5)
    first = LIST_KEYS[0]
    assert store.stat(first).modified is not None
    assert store.stat(first) == ObjectInfo(first, 0)  # write time is not part of equality


# -- keys and health -------------------------------------------------------------------------


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_refused(store: ObjectStore, key: str) -> None:
    """Keys that are not safe relative paths are refused with ValueError by every call."""
    with pytest.raises(ValueError, match="unsafe object key"):
        store.put(key, io.BytesIO(b"x"), 1)
    with pytest.raises(ValueError, match="unsafe object key"):
        store.open(key)
    with pytest.raises(ValueError, match="unsafe object key"):
        store.stat(key)
    with pytest.raises(ValueError, match="unsafe object key"):
        store.exists(key)
    with pytest.raises(ValueError, match="unsafe object key"):
        store.delete([key])
    assert list(store.list()) == []


def test_ping_succeeds(store: ObjectStore) -> None:
    """A healthy store answers ``ping`` without error."""
    store.ping()


# -- the filesystem backend's own mechanics --------------------------------------------------


def test_filesystem_list_skips_temporary_and_foreign_files(tmp_path: Path) -> None:
    """Temporary files (left by a crash mid-``put``) and names that are not keys are not
    listed."""
    store = FilesystemStore(tmp_path / "objects")
    put_bytes(store, "a/k.dcm", b"x")
    (store.root / "a" / ".~put-abc123.tmp").write_bytes(b"partial")
    (store.root / ".~put-def456.tmp").write_bytes(b"partial")
    (store.root / "lost+found").mkdir()
    (store.root / "lost+found" / "x").write_bytes(b"?")
    assert [info.key for info in store.list()] == ["a/k.dcm"]


def test_filesystem_ping_and_put_fail_when_root_unusable(tmp_path: Path) -> None:
    """When the root is no longer a writable directory, ``ping`` and ``put`` raise
    StoreError with the path and the OS reason."""
    root = tmp_path / "objects"
    store = FilesystemStore(root)
    root.rmdir()
    root.write_bytes(b"not a directory")
    with pytest.raises(StoreError, match="not writable"):
        store.ping()
    with pytest.raises(StoreError):
        put_bytes(store, "a/k", b"x")


def test_filesystem_refuses_paths_leaving_root(tmp_path: Path) -> None:
    """A key whose path a symlink leads outside the root is refused."""
    outside = tmp_path / "outside"
    outside.mkdir()
    store = FilesystemStore(tmp_path / "objects")
    (store.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StoreError, match="outside the store root"):
        put_bytes(store, "link/k", b"x")
    assert list(outside.iterdir()) == []


def test_filesystem_root_is_created(tmp_path: Path) -> None:
    """The root directory and its parents are created when missing."""
    store = FilesystemStore(tmp_path / "var" / "objects")
    assert store.root == (tmp_path / "var" / "objects").resolve()
    assert store.root.is_dir()
    store.ping()


# -- the S3 backend against servers that do not answer ---------------------------------------


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.timeout(30)  # on SDK defaults (5 retries, 5 min timeouts) this would hang
def test_s3_dead_endpoint_raises_store_error_quickly() -> None:
    """With nobody listening, constructing, ``ping``, ``put``, ``open``, ``stat``, ``list`` and
    ``delete`` raise StoreError within seconds, not after minutes of retries."""
    endpoint = f"127.0.0.1:{_unused_port()}"
    with pytest.raises(StoreError, match="unreachable"):
        S3Store(endpoint, "bucket", "key", "secret-key", secure=False)
    store = S3Store(endpoint, "bucket", "key", "secret-key", secure=False, create_bucket=False)
    try:
        with pytest.raises(StoreError, match="unreachable"):
            store.ping()
        with pytest.raises(StoreError):
            put_bytes(store, "k", b"x")
        with pytest.raises(StoreError):
            store.open("k")
        with pytest.raises(StoreError):
            store.stat("k")
        with pytest.raises(StoreError):
            store.list()
        with pytest.raises(StoreError):
            store.delete(["k"])
    finally:
        store.close()


@pytest.mark.timeout(30)
def test_s3_silent_endpoint_times_out() -> None:
    """A server that accepts connections but never answers (frozen) makes ``ping`` raise
    StoreError after the read timeout instead of hanging."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # connections complete in the kernel; nobody reads them
        endpoint = f"127.0.0.1:{listener.getsockname()[1]}"
        store = S3Store(
            endpoint,
            "bucket",
            "k",
            "secret-key",
            secure=False,
            read_timeout=1.0,
            create_bucket=False,
        )
        try:
            with pytest.raises(StoreError, match="timed out"):
                store.ping()
        finally:
            store.close()


@pytest.mark.timeout(30)
def test_s3_https_url_uses_tls(seaweedfs: SeaweedFS) -> None:
    """``s3+https://`` speaks TLS: against the plain-HTTP test server it fails with StoreError
    (the handshake fails) rather than falling back to plain HTTP."""
    settings = Settings(
        store_url=f"s3+https://{seaweedfs.endpoint}/tls-bucket",
        s3_access_key=seaweedfs.access_key,
        s3_secret_key=seaweedfs.secret_key,
    )
    with pytest.raises(StoreError, match="https://"):
        open_store(settings)


# -- opening a store from settings -----------------------------------------------------------


def test_open_store_file_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``file://./rel`` is relative to the working directory; ``file:///abs`` is absolute."""
    monkeypatch.chdir(tmp_path)
    relative = open_store(Settings(store_url="file://./var/objects"))
    assert isinstance(relative, FilesystemStore)
    assert relative.root == (tmp_path / "var" / "objects").resolve()
    absolute = open_store(Settings(store_url=f"file://{tmp_path / 'abs'}"))
    assert isinstance(absolute, FilesystemStore)
    assert absolute.root == (tmp_path / "abs").resolve()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "no scheme"),
        ("var/objects", "no scheme"),
        ("ftp://host/bucket", "not supported"),
        ("file://", "names no directory"),
        ("s3://", "names no host"),
        ("s3:///bucket", "names no host"),
        ("s3://127.0.0.1:notaport/bucket", "invalid port"),
        ("s3://127.0.0.1:9000", "names no bucket"),
        ("s3://127.0.0.1:9000/", "names no bucket"),
        ("s3://127.0.0.1:9000/Bad_Bucket", "not a valid bucket name"),
        ("s3://127.0.0.1:9000/ab", "not a valid bucket name"),
        ("s3://127.0.0.1:9000/bucket/prefix", "path after the bucket"),
        ("s3://127.0.0.1:9000/bucket?region=x", "query or fragment"),
        ("s3://user:hunter2@127.0.0.1:9000/bucket", "must not hold credentials"),
    ],
)
def test_open_store_bad_url_refused(url: str, message: str) -> None:
    """A malformed ``store_url`` raises ValueError saying what is wrong (and never echoes a
    password)."""
    settings = Settings(store_url=url, s3_access_key="k", s3_secret_key="secret-key")
    with pytest.raises(ValueError, match=message) as raised:
        open_store(settings)
    assert "hunter2" not in str(raised.value)


def test_open_store_s3_needs_credentials() -> None:
    """An S3 ``store_url`` without both keys in the settings raises ValueError naming them."""
    with pytest.raises(ValueError, match="s3_access_key and s3_secret_key"):
        open_store(Settings(store_url="s3://127.0.0.1:9000/bucket", s3_access_key="k"))
