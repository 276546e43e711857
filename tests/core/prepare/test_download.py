"""Downloads against a local HTTP server: resume with Range, checksums stored, pinned and enforced."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import os
import shutil
import threading
import time
import zipfile

import pytest

from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.prepare import PrepareOptions, prepare
from msta_cli.core.prepare.archives import rar_tool
from msta_cli.core.prepare.download import (
    OFFICIAL_ARCHIVES,
    download,
    parse_pins,
    parse_urls,
    stored_sha256,
    verify_existing,
)
from tests.core.prepare.layouts import build_ucf101
from tests.core.prepare.rar import write_rar

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Server:
    """Serves `files` by name (PAYLOAD as archive.rar by default); honours `Range: bytes=N-` unless told not to."""

    def __init__(
        self,
        honour_range: bool = True,
        files: dict[str, bytes] | None = None,
        cut_after: int | None = None,
        sent_from: int | None = None,
        sized: bool = True,
        chunked: bool = False,
        held: threading.Event | None = None,
    ) -> None:
        """`cut_after`: close the connection after that many bytes of the body, as a dropped one does, or with
        `held`, wait there until it is set and send the rest; `sent_from`: answer a Range request with the bytes
        from there instead, as a broken proxy might; `sized=False`: no Content-Length, the end of the body is
        the connection's; `chunked`: the body as one chunk (so a cut ends it mid-chunk)."""
        self.ranges: list[str | None] = []
        self.files = files or {"archive.rar": PAYLOAD}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = outer.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                requested = self.headers.get("Range")
                outer.ranges.append(requested)
                start = int(requested.removeprefix("bytes=").rstrip("-")) if requested and honour_range else 0
                if start >= len(data):
                    self.send_response(416)
                    self.end_headers()
                    return
                partial = bool(start)
                if partial and sent_from is not None:
                    start = sent_from
                self.send_response(206 if partial else 200)
                if partial:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                body = data[start:]
                head = body if cut_after is None else body[:cut_after]
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                elif sized:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # a download failing on its side hangs up early
                    if chunked:
                        self.wfile.write(b"%x\r\n" % len(body))
                    self.wfile.write(head)
                    if held is not None:
                        held.wait(timeout=10)
                        self.wfile.write(body[len(head) :])
                    elif chunked and head == body:
                        self.wfile.write(b"\r\n0\r\n\r\n")

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{self.base}/archive.rar"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@pytest.fixture
def server():
    server = Server()
    yield server
    server.close()


def quiet(task, completed, total):
    pass


def test_download_stores_the_checksum(tmp_path, server):
    dest = tmp_path / "archive.rar"
    digest = download(server.url, dest, None, quiet)
    assert dest.read_bytes() == PAYLOAD and digest == hashlib.sha256(PAYLOAD).hexdigest()
    assert (tmp_path / "archive.rar.sha256").read_text() == f"{digest}  archive.rar\n" and stored_sha256(dest) == digest
    assert not (tmp_path / "archive.rar.part").exists()


def test_download_resumes_a_partial_file_with_a_range_request(tmp_path, server):
    (tmp_path / "archive.rar.part").write_bytes(PAYLOAD[:300_000])
    seen = []
    download(
        server.url, tmp_path / "archive.rar", hashlib.sha256(PAYLOAD).hexdigest(), lambda *event: seen.append(event)
    )
    assert server.ranges == ["bytes=300000-"] and (tmp_path / "archive.rar").read_bytes() == PAYLOAD
    assert ("download archive.rar", len(PAYLOAD), len(PAYLOAD)) in seen


def test_a_server_ignoring_range_makes_it_start_over(tmp_path):
    with Server(honour_range=False) as server:
        (tmp_path / "archive.rar.part").write_bytes(b"stale bytes")
        download(server.url, tmp_path / "archive.rar", None, quiet)
    assert (tmp_path / "archive.rar").read_bytes() == PAYLOAD


def test_a_resumed_download_of_the_wrong_range_is_refused(tmp_path):
    (tmp_path / "archive.rar.part").write_bytes(PAYLOAD[:1000])
    with Server(sent_from=0) as server:
        with pytest.raises(
            MstaError,
            match=r"asked to resume at byte 1000, the server sent the range 'bytes 0-1048575/1048576'; delete .*part",
        ):
            download(server.url, tmp_path / "archive.rar", None, quiet)
    assert (tmp_path / "archive.rar.part").read_bytes() == PAYLOAD[:1000]


def test_a_complete_part_file_is_finished_without_a_body(tmp_path, server):
    (tmp_path / "archive.rar.part").write_bytes(PAYLOAD)
    download(server.url, tmp_path / "archive.rar", None, quiet)
    assert (tmp_path / "archive.rar").read_bytes() == PAYLOAD


def test_a_checksum_mismatch_is_an_error_and_the_download_is_deleted(tmp_path, server):
    actual = hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(
        MstaError, match=f"checksum mismatch for archive.rar from .*: expected sha256 {'0' * 64}, got {actual}"
    ):
        download(server.url, tmp_path / "archive.rar", "0" * 64, quiet)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_archive_is_verified_against_its_stored_checksum(tmp_path, server):
    dest = tmp_path / "archive.rar"
    download(server.url, dest, None, quiet)
    dest.write_bytes(PAYLOAD[:-1] + b"!")
    with pytest.raises(InputError, match="checksum mismatch for .*archive.rar: .*delete it to download it again"):
        download(server.url, dest, None, quiet)
    assert server.ranges == [None]


def test_an_unreachable_server_says_what_to_do(tmp_path, server):
    url = server.url
    server.close()
    with pytest.raises(
        MstaError,
        match=f"downloading {url} failed: .*; rerun to retry; if the server stays unavailable, download archive.rar "
        f"from a mirror \\(--url archive.rar=URL\\), or put a copy into {tmp_path} and run msta prepare without "
        "--download; either is checked against the official file's sha256",
    ):
        download(url, tmp_path / "archive.rar", None, quiet)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_file_on_the_server_says_what_to_do(tmp_path, server):
    with pytest.raises(
        MstaError, match=r"failed: HTTP 404 Not Found; if the server stays unavailable, download gone.rar from a mirror"
    ):
        download(f"{server.base}/gone.rar", tmp_path / "gone.rar", None, quiet)


def test_a_dropped_connection_keeps_what_arrived_and_the_rerun_resumes(tmp_path):
    dropping = Server(cut_after=300_000)
    try:
        with pytest.raises(MstaError, match=r"failed: the connection closed after 300000 of 1048576 bytes; rerun to resume \(300000 bytes kept in "):
            download(dropping.url, tmp_path / "archive.rar", None, quiet)
    finally:
        dropping.close()
    assert (tmp_path / "archive.rar.part").read_bytes() == PAYLOAD[:300_000]
    with Server() as server:
        download(server.url, tmp_path / "archive.rar", hashlib.sha256(PAYLOAD).hexdigest(), quiet)
    assert server.ranges == ["bytes=300000-"] and (tmp_path / "archive.rar").read_bytes() == PAYLOAD


def fake_ucf101_archives(source):
    """Both UCF101 archive names in `source`, holding bytes that are not the official files; their sha256."""
    source.mkdir()
    (source / "UCF101.rar").write_bytes(b"Rar!\x1a\x07\x00")
    (source / "UCF101TrainTestSplits-RecognitionTask.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in source.iterdir()}


def test_official_archives_are_checked_against_their_pinned_checksums_before_anything_is_extracted(
    tmp_path, monkeypatch
):
    actual = fake_ucf101_archives(tmp_path / "source")["UCF101.rar"]
    monkeypatch.setattr(shutil, "which", lambda name: pytest.fail(f"an extractor was looked for: {name}"))
    with pytest.raises(
        InputError,
        match=f"checksum mismatch for .*UCF101.rar: expected sha256 ca8dfadb4c891cb11316f94d52b6b0ac2a11994e67a0cae2271"
        f"80cd160bd8e55, got {actual}; .* accept it with --sha256 UCF101.rar={actual}",
    ):
        prepare(PrepareOptions(dataset="ucf101", source=tmp_path / "source", out=tmp_path / "out"))
    assert sorted(p.name for p in (tmp_path / "source").iterdir()) == [
        "UCF101.rar", "UCF101TrainTestSplits-RecognitionTask.zip"
    ]


def test_pins_given_on_the_command_line_replace_the_built_in_ones(tmp_path, monkeypatch):
    pins = fake_ucf101_archives(tmp_path / "source")
    monkeypatch.setattr(shutil, "which", lambda name: None)  # extraction is the next step, and it stops there
    with pytest.raises(MstaError, match="no RAR extractor found"):
        prepare(PrepareOptions(dataset="ucf101", source=tmp_path / "source", out=tmp_path / "out", sha256=pins))


def test_pins_are_checked():
    archives = OFFICIAL_ARCHIVES["ucf101"]
    assert parse_pins([f"UCF101.rar={'AB' * 32}"], archives) == {"UCF101.rar": "ab" * 32}
    with pytest.raises(
        InputError, match="expected ARCHIVE=<64 hex digits> with ARCHIVE one of UCF101.rar, UCF101TrainTestSplits"
    ):
        parse_pins(["UCF101.rar=123"], archives)


def test_mirrors_are_checked():
    archives = OFFICIAL_ARCHIVES["hmdb51"]
    assert parse_urls(["hmdb51_org.rar=https://mirror.example/h.rar"], archives) == {
        "hmdb51_org.rar": "https://mirror.example/h.rar"
    }
    with pytest.raises(InputError, match="--url 'h.rar=https://m/h.rar': expected ARCHIVE=<http\\(s\\) URL> with ARCHIVE one of"):
        parse_urls(["h.rar=https://m/h.rar"], archives)
    with pytest.raises(InputError, match="--url 'hmdb51_org.rar=/local/h.rar': expected ARCHIVE=<http"):
        parse_urls(["hmdb51_org.rar=/local/h.rar"], archives)


def test_a_mirror_needs_download(tmp_path):
    with pytest.raises(InputError, match="--url says where --download fetches an archive from; add --download"):
        prepare(PrepareOptions(dataset="hmdb51", source=tmp_path, out=tmp_path / "out", urls={"hmdb51_org.rar": "https://m"}))


def test_download_is_only_for_datasets_with_official_archives(tmp_path):
    with pytest.raises(InputError, match="--download is available for hmdb51 and ucf101 only"):
        prepare(PrepareOptions(dataset="kinetics400", source=tmp_path, out=tmp_path / "out", download=True))


@pytest.mark.skipif(rar_tool() is None, reason="no RAR extractor (bsdtar, 7z or unrar) on PATH")
def test_prepare_downloads_and_extracts_the_official_archives(tmp_path, templates):
    """The whole --download path for UCF101, both archives from a local mirror (--url, pinned with --sha256)."""
    layout = build_ucf101(tmp_path / "layout", templates)
    videos = {p.relative_to(layout).as_posix(): p.read_bytes() for p in sorted((layout / "UCF-101").rglob("*.avi"))}
    lists = io.BytesIO()
    with zipfile.ZipFile(lists, "w") as archive:
        for path in sorted((layout / "ucfTrainTestlist").iterdir()):
            archive.writestr(f"ucfTrainTestlist/{path.name}", path.read_bytes())
    served = {"UCF101.rar": write_rar(tmp_path / "UCF101.rar", videos).read_bytes(), "splits.zip": lists.getvalue()}
    server = Server(files=served)
    names = {"UCF101.rar": "UCF101.rar", "UCF101TrainTestSplits-RecognitionTask.zip": "splits.zip"}
    try:
        report = prepare(
            PrepareOptions(
                dataset="ucf101", source=tmp_path / "source", out=tmp_path / "out", workers=2, download=True,
                urls={name: f"{server.base}/{served_as}" for name, served_as in names.items()},  # a mirror
                sha256={name: hashlib.sha256(served[served_as]).hexdigest() for name, served_as in names.items()},
            )
        )
    finally:
        server.close()
    assert (
        report.video_root == (tmp_path / "source" / "UCF-101").absolute() and report.lists["train_1.csv"].written == 12
    )
    assert sorted(p.name for p in (tmp_path / "source").iterdir()) == sorted(
        [
            ".UCF101.rar.extracted",
            ".UCF101TrainTestSplits-RecognitionTask.zip.extracted",
            "UCF-101",
            "UCF101.rar",
            "UCF101.rar.sha256",
            "UCF101TrainTestSplits-RecognitionTask.zip",
            "UCF101TrainTestSplits-RecognitionTask.zip.sha256",
            "ucfTrainTestlist",
        ]
    )


def test_a_cut_off_chunked_download_keeps_what_arrived(tmp_path):
    with Server(chunked=True, cut_after=300_000) as server:
        with pytest.raises(
            MstaError,
            match=r"failed: the connection closed after 300000 bytes; rerun to resume \(300000 bytes kept in ",
        ):
            download(server.url, tmp_path / "archive.rar", None, quiet)
    assert (tmp_path / "archive.rar.part").read_bytes() == PAYLOAD[:300_000]


def test_every_received_byte_is_in_the_part_file_while_the_rest_is_awaited(tmp_path):
    """What a killed process leaves behind: nothing received waits in memory for more to arrive."""
    held = threading.Event()
    server = Server(cut_after=300_000, held=held)
    part = tmp_path / "archive.rar.part"
    fetching = threading.Thread(target=download, args=(server.url, tmp_path / "archive.rar", None, quiet))
    fetching.start()
    try:
        deadline = time.monotonic() + 5
        while (part.stat().st_size if part.exists() else 0) < 300_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert part.read_bytes() == PAYLOAD[:300_000]
    finally:
        held.set()
        fetching.join()
        server.close()
    assert (tmp_path / "archive.rar").read_bytes() == PAYLOAD


def test_a_download_of_unknown_size_that_fails_its_checksum_is_kept_for_the_rerun(tmp_path):
    dropping = Server(sized=False, cut_after=300_000)
    pin = hashlib.sha256(PAYLOAD).hexdigest()
    try:
        with pytest.raises(
            MstaError,
            match=r"checksum mismatch for archive.rar .*; the server did not say how large the file is, so the "
            r"download may have been cut off: rerun to resume \(300000 bytes kept in .*archive.rar.part\)",
        ):
            download(dropping.url, tmp_path / "archive.rar", pin, quiet)
    finally:
        dropping.close()
    with Server(sized=False) as server:
        download(server.url, tmp_path / "archive.rar", pin, quiet)
    assert server.ranges == ["bytes=300000-"] and (tmp_path / "archive.rar").read_bytes() == PAYLOAD


def test_a_whole_download_of_unknown_size_with_the_wrong_checksum_is_deleted_once_the_server_says_it_is_whole(
    tmp_path,
):
    with Server(sized=False) as server:
        with pytest.raises(MstaError, match="may have been cut off: rerun to resume"):
            download(server.url, tmp_path / "archive.rar", "0" * 64, quiet)
        with pytest.raises(MstaError, match="; the download was deleted, rerun to fetch it again"):
            download(server.url, tmp_path / "archive.rar", "0" * 64, quiet)  # 416: nothing after the part
    assert server.ranges == [None, f"bytes={len(PAYLOAD)}-"] and list(tmp_path.iterdir()) == []


def test_the_size_in_content_range_tells_a_cut_off_resumed_download(tmp_path):
    (tmp_path / "archive.rar.part").write_bytes(PAYLOAD[:1000])
    with Server(sized=False, cut_after=300_000) as server:
        with pytest.raises(MstaError, match=r"the connection closed after 301000 of 1048576 bytes; rerun to resume"):
            download(server.url, tmp_path / "archive.rar", None, quiet)
    assert (tmp_path / "archive.rar.part").read_bytes() == PAYLOAD[:301_000]


@pytest.mark.parametrize("below", ["", "sub"])
def test_a_file_where_the_download_folder_should_be_is_a_user_mistake(tmp_path, server, below):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(
        InputError, match=f"{tmp_path / 'file'} is a file, not a folder; --download fetches archive.rar"
    ):
        download(server.url, tmp_path / "file" / below / "archive.rar", None, quiet)
    assert server.ranges == []


def test_a_part_file_that_cannot_be_opened_is_a_local_error_not_the_servers(tmp_path, server):
    (tmp_path / "archive.rar.part").mkdir()
    with pytest.raises(MstaError, match=r"^cannot write the download to .*archive.rar.part: Is a directory") as error:
        download(server.url, tmp_path / "archive.rar", None, quiet)
    assert "mirror" not in str(error.value)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full, a device that is always full")
def test_a_full_disk_is_named_as_the_cause_not_the_server(tmp_path, server):
    (tmp_path / "archive.rar.part").symlink_to("/dev/full")
    with pytest.raises(MstaError, match=r"^cannot write the download to .*archive.rar.part: No space left on device$"):
        download(server.url, tmp_path / "archive.rar", None, quiet)


def test_the_checksum_cache_is_skipped_where_it_cannot_be_written(tmp_path):
    """A SOURCE msta may not write to, such as archives another user put there: the run goes on without the cache."""
    archive = tmp_path / "archive.rar"
    archive.write_bytes(PAYLOAD)
    (tmp_path / "archive.rar.sha256").mkdir()  # fails to be written like a read-only folder, even for root
    assert verify_existing(archive, hashlib.sha256(PAYLOAD).hexdigest(), quiet) == hashlib.sha256(PAYLOAD).hexdigest()


def test_a_mangled_checksum_cache_is_ignored_and_rewritten(tmp_path):
    archive = tmp_path / "archive.rar"
    archive.write_bytes(PAYLOAD)
    (tmp_path / "archive.rar.sha256").write_text("0123  archive.rar\n")  # cut short, e.g. by a full disk
    digest = verify_existing(archive, None, quiet)
    assert stored_sha256(archive) == digest == hashlib.sha256(PAYLOAD).hexdigest()


@pytest.mark.parametrize("parse", [parse_pins, parse_urls])
def test_pins_and_mirrors_for_a_dataset_without_archives_say_which_datasets_have_them(parse):
    with pytest.raises(InputError, match=r"^--(sha256|url) applies to the hmdb51 and ucf101 archives only$"):
        parse(["x=abc"], ())
