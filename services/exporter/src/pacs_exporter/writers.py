"""Mesh writers, one per format, in a registry: ``WRITERS[format](mesh, stream, comment)``.

*comment* says what the numbers mean (e.g. ``"pacs-cloud mesh, LPS mm"``) and goes where each
format keeps a comment: the binary STL header (80 bytes), the ASCII STL solid name, PLY
``comment`` lines, OBJ ``#`` lines. All writers are vectorised: the data is laid out in numpy
arrays (an explicit little-endian structured dtype for binary STL and PLY, fixed-width ASCII
fields for the text formats) and written in a few large ``write`` calls.

- ``stl``: binary STL, 80-byte header, uint32 count, 50 bytes per triangle (normal, 3
  vertices, uint16 attribute count 0), float32 little-endian.
- ``stl-ascii``: ASCII STL, ``%.6f`` numbers.
- ``ply``: binary little-endian PLY 1.0, float32 vertices, uchar-count int32 face lists.
- ``obj``: Wavefront OBJ with area-weighted vertex normals, ``f a//a b//b c//c``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from pacs_exporter.curvature import cross_rows
from pacs_exporter.mesh import Mesh
from pacs_exporter.text import fixed_fields, integer_fields, records

__all__ = ["STL_DTYPE", "WRITERS", "Writer", "face_normals", "vertex_normals"]

Writer = Callable[[Mesh, BinaryIO, str], None]

STL_DTYPE: Final = np.dtype(
    [("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attributes", "<u2")]
)
PLY_FACE_DTYPE: Final = np.dtype([("count", "u1"), ("indices", "<i4", (3,))])
CHUNK_FACES: Final = 1 << 18
"""Faces formatted per batch by the text writers (bounds their temporary memory)."""


def face_normals(
    vertices: npt.NDArray[np.floating], faces: npt.NDArray[np.integer]
) -> npt.NDArray[np.float32]:
    """Unit normals (F, 3) of the faces, right-hand rule; zero for a zero-area face."""
    v = vertices.astype(np.float32, copy=False)
    a = v[faces[:, 0]]
    cross = cross_rows(v[faces[:, 1]] - a, v[faces[:, 2]] - a)
    length = np.sqrt(np.einsum("ij,ij->i", cross, cross))[:, None]
    unit: npt.NDArray[np.float32] = np.divide(cross, length, out=cross, where=length > 0)
    return unit


def vertex_normals(
    vertices: npt.NDArray[np.floating], faces: npt.NDArray[np.integer]
) -> npt.NDArray[np.float32]:
    """Unit vertex normals (V, 3): the area-weighted sum of the adjacent faces' normals."""
    v = vertices.astype(np.float32, copy=False)
    a = v[faces[:, 0]]
    cross = cross_rows(v[faces[:, 1]] - a, v[faces[:, 2]] - a)
    sums = np.zeros((len(v), 3), dtype=np.float64)
    for corner in range(3):
        for axis in range(3):
            sums[:, axis] += np.bincount(faces[:, corner], cross[:, axis], minlength=len(v))
    length = np.linalg.norm(sums, axis=1, keepdims=True)
    unit: npt.NDArray[np.float32] = np.divide(
        sums, length, out=np.zeros_like(sums), where=length > 0
    ).astype(np.float32)
    return unit


def _header(comment: str, size: int) -> bytes:
    text = comment.encode("ascii", "replace")[:size]
    return text.ljust(size, b" ")


def write_stl(mesh: Mesh, stream: BinaryIO, comment: str) -> None:
    """Binary STL: a header not starting with ``solid`` (readers take that for ASCII)."""
    header = _header(comment, 80)
    if header.lower().startswith(b"solid"):
        header = _header("mesh " + comment, 80)
    stream.write(header)
    stream.write(np.uint32(len(mesh.faces)).astype("<u4").tobytes())
    for start in range(0, len(mesh.faces), 4 * CHUNK_FACES):
        faces = mesh.faces[start : start + 4 * CHUNK_FACES]
        record = np.empty(len(faces), dtype=STL_DTYPE)
        record["vertices"] = mesh.vertices[faces]
        corners = record["vertices"]
        normal = cross_rows(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        length = np.sqrt(np.einsum("ij,ij->i", normal, normal))[:, None]
        record["normal"] = np.divide(normal, length, out=np.zeros_like(normal), where=length > 0)
        record["attributes"] = 0
        stream.write(record.tobytes())


def write_stl_ascii(mesh: Mesh, stream: BinaryIO, comment: str) -> None:
    """ASCII STL; the solid's name is the comment with spaces as underscores."""
    name = "_".join(comment.encode("ascii", "replace").decode().split()) or "mesh"
    stream.write(f"solid {name}\n".encode())
    for start in range(0, len(mesh.faces), CHUNK_FACES):
        faces = mesh.faces[start : start + CHUNK_FACES]
        count = len(faces)
        normal = fixed_fields(face_normals(mesh.vertices, faces), 6, 1).reshape(count, 3, -1)
        corner = fixed_fields(mesh.vertices[faces], 6).reshape(count, 9, -1)
        parts: list[bytes | npt.NDArray[np.uint8]] = [b"facet normal "]
        for axis in range(3):
            parts += [normal[:, axis], b" " if axis < 2 else b"\n  outer loop\n"]
        for n in range(3):
            parts.append(b"    vertex ")
            for axis in range(3):
                parts += [corner[:, 3 * n + axis], b" " if axis < 2 else b"\n"]
        parts.append(b"  endloop\nendfacet\n")
        stream.write(records(parts, count))
    stream.write(f"endsolid {name}\n".encode())


def write_ply(mesh: Mesh, stream: BinaryIO, comment: str) -> None:
    """Binary little-endian PLY with indexed faces (PLY 1.0)."""
    comments = "".join(f"comment {line}\n" for line in comment.splitlines() if line)
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"{comments}"
        f"element vertex {len(mesh.vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        f"element face {len(mesh.faces)}\n"
        "property list uchar int vertex_indices\nend_header\n"
    )
    stream.write(header.encode("ascii", "replace"))
    stream.write(np.ascontiguousarray(mesh.vertices, dtype="<f4").tobytes())
    for start in range(0, len(mesh.faces), 4 * CHUNK_FACES):
        faces = mesh.faces[start : start + 4 * CHUNK_FACES]
        record = np.empty(len(faces), dtype=PLY_FACE_DTYPE)
        record["count"] = 3
        record["indices"] = faces
        stream.write(record.tobytes())


def write_obj(mesh: Mesh, stream: BinaryIO, comment: str) -> None:
    """Wavefront OBJ: ``v`` and ``vn`` lines, then ``f a//a b//b c//c`` (1-based)."""
    for line in comment.splitlines() or [""]:
        stream.write(f"# {line}\n".encode("ascii", "replace"))
    normals = vertex_normals(mesh.vertices, mesh.faces)
    for start in range(0, len(mesh.vertices), CHUNK_FACES):
        chunk = mesh.vertices[start : start + CHUNK_FACES]
        fields = fixed_fields(chunk, 6).reshape(len(chunk), 3, -1)
        stream.write(
            records(
                [b"v ", fields[:, 0], b" ", fields[:, 1], b" ", fields[:, 2], b"\n"], len(chunk)
            )
        )
    for start in range(0, len(normals), CHUNK_FACES):
        chunk = normals[start : start + CHUNK_FACES]
        fields = fixed_fields(chunk, 6, 1).reshape(len(chunk), 3, -1)
        stream.write(
            records(
                [b"vn ", fields[:, 0], b" ", fields[:, 1], b" ", fields[:, 2], b"\n"], len(chunk)
            )
        )
    for start in range(0, len(mesh.faces), CHUNK_FACES):
        faces = mesh.faces[start : start + CHUNK_FACES]
        index = integer_fields(faces + 1).reshape(len(faces), 3, -1)
        parts: list[bytes | npt.NDArray[np.uint8]] = [b"f "]
        for corner in range(3):
            parts += [index[:, corner], b"//", index[:, corner], b" " if corner < 2 else b"\n"]
        stream.write(records(parts, len(faces)))


WRITERS: Final[dict[str, Writer]] = {
    "stl": write_stl,
    "stl-ascii": write_stl_ascii,
    "ply": write_ply,
    "obj": write_obj,
}
