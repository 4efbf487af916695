"""S3 object store: any S3-compatible server (AWS, SeaweedFS, MinIO...) through the ``minio`` SDK.

Atomicity comes from S3 itself: an object appears when its single PUT or its multipart upload
completes, never in part. Objects up to :data:`DEFAULT_PART_SIZE` go in one PUT; larger ones in
parts of that size, uploaded one after another (the SDK's parallel upload leaks its worker
threads when the source stream fails, and buffers a part per thread). Memory per ``put`` is one
part.

The SDK's HTTP client is replaced by one with short connect timeouts and few retries, so an
unreachable server fails a request in about a second (refused) or a few seconds (no answer to
connect), and a server that accepts connections but never answers after ``2 * read_timeout``.
Every SDK and transport error becomes :class:`StoreError`; a missing key, :class:`ObjectNotFound`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import BinaryIO, NoReturn, cast

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError

from pacs_common.storage.base import (
    CHUNK_SIZE,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StoreError,
    check_key,
    check_range,
)

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 16 * MIB
"""Objects larger than this are uploaded in parts of this size (S3 allows 5 MiB to 5 GiB)."""
_MAX_PARTS = 10_000  # S3's limit on parts per multipart upload
_MIN_PART_SIZE = 5 * MIB
_POOL_SIZE = 32  # connections kept per server: the API serves requests from a thread pool

# Errors of the SDK and of the transport under it: the store is unreachable or failing.
_TRANSPORT_ERRORS = (MinioException, HTTPError, OSError)


class S3Store(ObjectStore):
    """Objects in *bucket* on the S3 server at *endpoint* (``host[:port]``).

    The bucket is created when missing, unless *create_bucket* is false; a server that cannot be
    reached then raises :class:`StoreError` from the constructor.
    """

    read_ahead = 4  # measured on SeaweedFS: 191 MB/s in turn, ~300 MB/s four at a time

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        secure: bool = True,
        region: str | None = None,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        connect_timeout: float = 3.0,
        read_timeout: float = 15.0,
        create_bucket: bool = True,
    ) -> None:
        if part_size < _MIN_PART_SIZE:
            raise ValueError(f"part size {part_size} is below S3's minimum of {_MIN_PART_SIZE}")
        self._endpoint = endpoint
        self._bucket = bucket
        self._part_size = part_size
        self._where = f"{'https' if secure else 'http'}://{endpoint}/{bucket}"
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            maxsize=_POOL_SIZE,
            cert_reqs="CERT_REQUIRED",
            retries=urllib3.Retry(
                total=4,
                connect=1,
                read=1,
                status=2,
                other=0,
                backoff_factor=0.2,
                status_forcelist=(500, 502, 503, 504),
                raise_on_status=False,  # let the SDK read the server's own error message
            ),
        )
        try:
            self._client = Minio(
                endpoint,
                access_key=access_key,
                secret_key=secret_key,
                secure=secure,
                region=region,
                http_client=self._http,
            )
        except ValueError:
            self._http.clear()
            raise
        if create_bucket:
            try:
                self._ensure_bucket()
            except BaseException:
                self._http.clear()
                raise

    def __repr__(self) -> str:
        return f"S3Store({self._where!r})"

    # -- the contract ---------------------------------------------------------------------------

    def put(self, key: str, data: BinaryIO, length: int) -> None:
        check_key(key)
        if length < 0:
            raise ValueError(f"negative length {length} for object {key!r}")
        source = _ExactReader(data, length, key)
        try:
            self._client.put_object(
                self._bucket,
                key,
                cast(BinaryIO, source),  # the SDK only calls read()
                length,
                part_size=self._part_size_for(length),
                num_parallel_uploads=1,
            )
        except Exception as exc:
            if source.failure is exc:
                raise
            if source.failure is not None:  # the upload was aborted because the source failed
                raise source.failure from exc
            self._raise(exc, "put", key)

    def open(self, key: str, byte_range: tuple[int, int] | None = None) -> Iterator[bytes]:
        check_key(key)
        checked = check_range(byte_range)
        if checked is None:
            offset, length = 0, 0  # the SDK's "whole object"
        else:
            offset, length = checked[0], checked[1] - checked[0]
            if length == 0:  # the SDK would read to the end: answer from a stat instead
                self.stat(key)
                return iter(())
        try:
            response = self._client.get_object(self._bucket, key, offset=offset, length=length)
        except S3Error as exc:
            if exc.code == "InvalidRange":  # the object exists; the range starts past its end
                return iter(())
            self._raise(exc, "get", key)
        except _TRANSPORT_ERRORS as exc:
            self._raise(exc, "get", key)
        return _ResponseChunks(response, key, self._where)

    def stat(self, key: str) -> ObjectInfo:
        check_key(key)
        try:
            found = self._client.stat_object(self._bucket, key)
        except _TRANSPORT_ERRORS as exc:
            self._raise(exc, "stat", key)
        return ObjectInfo(key, self._size(found.size, key), found.last_modified)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            check_key(key)
        if not keys:
            return
        try:
            failures = [
                failure
                for failure in self._client.remove_objects(
                    self._bucket, [DeleteObject(key) for key in keys]
                )
                if failure.code != "NoSuchKey"
            ]
        except _TRANSPORT_ERRORS as exc:
            self._raise(exc, "delete")
        if failures:
            first = failures[0]
            raise StoreError(
                f"S3 store {self._where}: could not delete {len(failures)} of {len(keys)} "
                f"objects; {first.name!r}: {first.code} {first.message or ''}".rstrip()
            )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with *prefix*, in key order.

        The whole listing is read before the first result: S3 servers do not agree on order
        (SeaweedFS lists directory by directory, so ``a/b`` comes before ``a-c``), and key order
        needs a sort. Memory grows with the number of objects listed (about 150 bytes each):
        list by study or series, not the whole store at once.
        """
        try:
            found = [
                ObjectInfo(
                    item.object_name, self._size(item.size, item.object_name), item.last_modified
                )
                for item in self._client.list_objects(
                    self._bucket, prefix=prefix or None, recursive=True
                )
                if item.object_name is not None and _is_key(item.object_name)
            ]
        except _TRANSPORT_ERRORS as exc:
            self._raise(exc, "list")
        found.sort(key=lambda info: info.key)
        return iter(found)

    def scan(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects under *prefix* in the server's order, one listing page (1,000 keys) at a
        time: memory stays bounded, unlike :meth:`list`, which sorts."""
        try:
            for item in self._client.list_objects(
                self._bucket, prefix=prefix or None, recursive=True
            ):
                name = item.object_name
                if name is not None and _is_key(name):
                    yield ObjectInfo(name, self._size(item.size, name), item.last_modified)
        except _TRANSPORT_ERRORS as exc:
            self._raise(exc, "list")

    def ping(self) -> None:
        try:
            exists = self._client.bucket_exists(self._bucket)
        except _TRANSPORT_ERRORS as exc:
            self._raise(exc, "ping")
        if not exists:
            raise StoreError(f"S3 store {self._where}: the bucket does not exist")

    def close(self) -> None:
        self._http.clear()

    # -- helpers --------------------------------------------------------------------------------

    def _ensure_bucket(self) -> None:
        try:
            if not self._client.bucket_exists(self._bucket):
                self._client.make_bucket(self._bucket)
        except S3Error as exc:
            if exc.code != "BucketAlreadyOwnedByYou":  # created concurrently: fine
                self._raise(exc, "create bucket")
        except _TRANSPORT_ERRORS as exc:
            self._raise(exc, "create bucket")

    def _size(self, size: int | None, key: str) -> int:
        if size is None:
            raise StoreError(f"S3 store {self._where}: the server gave no size for {key!r}")
        return size

    def _part_size_for(self, length: int) -> int:
        """The configured part size, or larger when the object would need too many parts."""
        needed = math.ceil(length / _MAX_PARTS)
        return max(self._part_size, math.ceil(needed / MIB) * MIB)

    def _raise(self, exc: BaseException, action: str, key: str | None = None) -> NoReturn:
        """Raise *exc* as :class:`ObjectNotFound` or :class:`StoreError`; others unchanged."""
        if isinstance(exc, S3Error):
            if exc.code == "NoSuchKey" and key is not None:
                raise ObjectNotFound(key) from exc
            raise StoreError(
                f"S3 store {self._where}: {action} {key or ''} failed: {exc.code}: {exc.message}"
            ) from exc
        if isinstance(exc, _TRANSPORT_ERRORS):
            raise StoreError(
                f"S3 store {self._where} unreachable or failing ({action}): {exc}"
            ) from exc
        raise exc


class _ExactReader:
    """Reads exactly *length* bytes of *data* for the SDK, noting why it failed if it did.

    The SDK reads up to a part at a time; a stream that ends early becomes a
    :class:`ValueError` here (the SDK would raise :class:`OSError`, indistinguishable from a
    network failure), and anything *data* raises is kept so ``put`` can re-raise it as is.
    """

    def __init__(self, data: BinaryIO, length: int, key: str) -> None:
        self._data = data
        self._length = length
        self._remaining = length
        self._key = key
        self.failure: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self._remaining:
            size = self._remaining
        if size == 0:
            return b""
        try:
            chunk = self._data.read(size)
        except BaseException as exc:
            self.failure = exc
            raise
        if not chunk or len(chunk) > size:
            done = self._length - self._remaining
            self.failure = ValueError(
                f"stream for object {self._key!r} ended after {done} of {self._length} bytes"
                if not chunk
                else f"stream for object {self._key!r} returned more bytes than asked for"
            )
            raise self.failure
        self._remaining -= len(chunk)
        return chunk


class _ResponseChunks(Iterator[bytes]):
    """Chunks of a streaming GET response; closes it and releases its connection when done."""

    def __init__(self, response: urllib3.BaseHTTPResponse, key: str, where: str) -> None:
        self._response: urllib3.BaseHTTPResponse | None = response
        self._chunks = response.stream(CHUNK_SIZE)
        self._key = key
        self._where = where

    def __iter__(self) -> _ResponseChunks:
        return self

    def __next__(self) -> bytes:
        if self._response is None:
            raise StopIteration
        try:
            return next(self._chunks)
        except StopIteration:
            self.close()
            raise
        except _TRANSPORT_ERRORS as exc:
            self.close()
            raise StoreError(
                f"S3 store {self._where}: reading object {self._key!r} failed: {exc}"
            ) from exc

    def close(self) -> None:
        """Close the response (dropping the connection if it was not read to the end)."""
        response, self._response = self._response, None
        if response is not None:
            response.close()
            response.release_conn()

    def __del__(self) -> None:
        self.close()


def _is_key(name: str) -> bool:
    try:
        check_key(name)
    except ValueError:
        return False
    return True
