"""Split images travel as multipart bodies, streamed both ways (hosts/lxd/images.py): whatever
the chunking, the parts come out whole and the body LXD gets is the one a form would send."""

from __future__ import annotations

import email.parser
import email.policy

import pytest

from hosts.lxd import LXDError
from hosts.lxd.images import MultipartReader, SplitUpload, part_name

METADATA, ROOTFS = b"metadata.yaml bytes\r\n--not-a-boundary\r\n", bytes(range(256)) * 40


def chunked(data: bytes, size: int):
    return (data[i : i + size] for i in range(0, len(data), size))


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1000, 100_000])
def test_a_split_upload_is_the_multipart_body_a_form_would_send(size):
    body = SplitUpload(chunked(METADATA + ROOTFS, size), len(METADATA), len(ROOTFS), ("m.tar", "r.squashfs"))
    data = b"".join(body)
    assert len(data) == len(body)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {body.content_type}\r\n\r\n".encode() + data
    )
    parts = list(message.iter_parts())
    assert [p.get_param("name", header="content-disposition") for p in parts] == ["metadata", "rootfs"]
    assert [p.get_filename() for p in parts] == ["m.tar", "r.squashfs"]
    assert [p.get_payload(decode=True) for p in parts] == [METADATA, ROOTFS]


@pytest.mark.parametrize("size", [1, 2, 5, 13, 64, 4096, 100_000])
def test_the_reader_gives_each_part_whole_whatever_the_chunks(size):
    body = SplitUpload(iter([METADATA, ROOTFS]), len(METADATA), len(ROOTFS), ("meta-x.tar.gz", "x.tar.gz"))
    reader = MultipartReader(chunked(b"".join(body), size), body.boundary)
    found = []
    while (headers := reader.next_part()) is not None:
        found.append((part_name(headers), b"".join(reader.data())))
    assert found == [(("metadata", "meta-x.tar.gz"), METADATA), (("rootfs", "x.tar.gz"), ROOTFS)]


def test_the_reader_skips_a_part_nobody_read():
    body = SplitUpload(iter([METADATA, ROOTFS]), len(METADATA), len(ROOTFS), ("m", "r"))
    reader = MultipartReader(chunked(b"".join(body), 10), body.boundary)
    assert part_name(reader.next_part())[0] == "metadata"
    assert part_name(reader.next_part())[0] == "rootfs"  # the metadata's bytes were skipped
    assert b"".join(reader.data()) == ROOTFS
    assert reader.next_part() is None


def test_a_body_cut_short_is_an_error_not_a_short_file():
    body = b"".join(SplitUpload(iter([METADATA, ROOTFS]), len(METADATA), len(ROOTFS), ("m", "r")))
    boundary = body.split(b"\r\n", 1)[0][2:].decode()
    reader = MultipartReader(chunked(body[:-200], 64), boundary)
    reader.next_part()
    reader.next_part()
    with pytest.raises(LXDError, match="ended in the middle of a part"):
        b"".join(reader.data())
