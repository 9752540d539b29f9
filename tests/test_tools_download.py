"""tools/download.py against a local HTTP server (a thread of http.server on 127.0.0.1; no other host is contacted),
serving tiny files in each dataset's released format under a registry pointing at it: every name downloads,
verifies, unpacks and opens; a dropped connection resumes with Range; a server without Range restarts; checksum
mismatches, unsafe tars, trust on first use (only of a file of known length that its reader opens), an unknown name,
no network, HTML, a cut body, a body of unknown length, a body that is not a tar, Ctrl-C and a full disk."""
import csv
import errno
import gzip
import hashlib
import io
import json
import os
import re
import shlex
import socket
import tarfile
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import main_3dident
import main_kitti
from datasets import slowvae_files
from datasets.slowvae_files import DSPRITES_FILE, HOW_TO_GET, read_mpi3d
from kitti_masks.dataset import HOW_TO_GET as KITTI_HOW_TO_GET
from tests.slowvae_fixtures import write_cars3d, write_mpi3d, write_smallnorb
from tests.test_datasets_threedident import write_folder
from tools import download
from tools.kitti_masks.make_synthetic import WalkConfig, write_synthetic
from tools.slowvae_data.dsprites import make_dsprites
from tools.slowvae_data.shapes3d import make_shapes3d, write_h5

REPO = Path(__file__).resolve().parents[1]
MPI3D_TINY = (2, 2, 2, 1, 1, 2, 3)
FAST = ("--retry-wait", "0", "--retries", "2")


class Handler(BaseHTTPRequestHandler):
    """GET /<mode>/<name>: ok honours Range; norange ignores it; drop sends half the body, then closes, on the
    first request of each path (then as ok); cut always does; html sends a web page; nolength sends no
    Content-Length: half the body, then closes, without Range, the rest with Range (its Content-Range the total)."""

    def do_GET(self) -> None:
        _, mode, name = self.path.split("/", 2)
        self.server.log.append((self.path, self.headers.get("Range")))
        if mode == "html":
            page = b"<!DOCTYPE html><html><body>Please log in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        if name not in self.server.files:
            self.send_error(404)
            return
        body, start = self.server.files[name], 0
        ranged = self.headers.get("Range")
        if ranged and mode != "norange":
            start = int(ranged.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if mode != "nolength":
            self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if mode == "cut" or (mode == "drop" and self.path not in self.server.dropped) or (
                mode == "nolength" and not ranged):
            self.server.dropped.add(self.path)
            self.wfile.write(body[start:start + (len(body) - start) // 2])
            return  # HTTP/1.0: the connection closes here, mid-body
        self.wfile.write(body[start:])

    def log_message(self, *args) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that hangs up mid-body (the HTML and size checks) is expected


@pytest.fixture(scope="module")
def server():
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.files, httpd.log, httpd.dropped = {}, [], set()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def tar_bytes(root: Path, names: list[str], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name in names:
            tar.add(root / name, arcname=name)
    return buffer.getvalue()


def natural_csv() -> bytes:
    """The released CSV's format: id, cat_id, then per frame a Python list of [y, x, area] per object or None."""
    rng, text = np.random.default_rng(0), io.StringIO()
    rows = csv.writer(text)
    rows.writerow(["id", "cat_id", *(f"t_{i}" for i in range(8))])
    for video in range(6):
        cells = [str([[*rng.uniform(10, 50, 2).round(1).tolist(), float(rng.integers(20, 200))], None])
                 for _ in range(7)]
        rows.writerow([f"v{video}", "1", *cells, ""])
    return text.getvalue().encode()


def released_files(root: Path) -> dict[str, bytes]:
    """Every registry file name → tiny bytes in its released format."""
    write_folder(root / "3dident" / "train", n=12)
    write_folder(root / "3dident" / "test", n=10, digits=3)  # names of another width than ceil(log10 N)
    write_synthetic(str(root / "kitti"), 3, seed=0, config=WalkConfig(max_len=8))
    np.savez(root / DSPRITES_FILE, **make_dsprites((1, 3, 2, 2, 2, 2)))
    write_h5(str(root / "3dshapes.h5"), make_shapes3d((2, 2, 2, 2, 2, 2)))
    for variant in slowvae_files.MPI3D_VARIANTS:
        write_mpi3d(str(root), MPI3D_TINY, variant)
    write_cars3d(str(root / "data" / "cars"), n_cars=2, n_azimuths=3, n_elevations=2)
    (root / "data" / "cars" / "list.txt").write_text("car_000_mesh\ncar_001_mesh\n")
    write_smallnorb(str(root / "norb"))
    files = {"3dident_train.tar": tar_bytes(root, ["3dident/train"]),
             "3dident_test.tar": tar_bytes(root, ["3dident/test"]),
             "kitti_peds_v2.pickle": (root / "kitti" / "kitti_peds_v2.pickle").read_bytes(),
             "downscale_keepaspect.csv": natural_csv(),
             "nips2015-analogy-data.tar.gz": tar_bytes(root, ["data"], "w:gz")}
    for path in [root / DSPRITES_FILE, root / "3dshapes.h5", *root.glob("mpi3d_*.npz")]:
        files[path.name] = path.read_bytes()
    for path in (root / "norb").iterdir():
        files[path.name + ".gz"] = gzip.compress(path.read_bytes())
    return files


def local_entry(entry: dict, files: dict[str, bytes], base: str, mode: str = "ok", prefix: str = "") -> dict:
    """A registry entry with its URLs on the local server (each file served as `prefix` + its name), its checksums
    and sizes those of the tiny files."""
    local = dict(entry, files=[])
    for file in entry["files"]:
        body = files[file["name"]]
        checksum = file["checksum"] and dict(file["checksum"], value=hashlib.new(
            file["checksum"]["algorithm"], body).hexdigest())
        local["files"].append(dict(file, urls=[f"{base}/{mode}/{prefix}{file['name']}"], checksum=checksum,
                                   size=len(body) if file["size"] else None))
    return local


def served_as(entry: dict, body: bytes, server, prefix: str, mode: str = "ok") -> dict:
    """`entry` (of one file) served as `body` under `prefix`, its checksum (where one is published) that of `body`."""
    name = entry["files"][0]["name"]
    server.files[prefix + name] = body
    return local_entry(entry, {name: body}, server.base, mode, prefix)


def write_registry(path: Path, registry: dict) -> str:
    path.write_text(json.dumps(registry))
    return str(path)


@pytest.fixture(scope="module")
def registry(server, tmp_path_factory):
    """The repository's registry, every entry moved to the local server."""
    server.files.update(released_files(tmp_path_factory.mktemp("released")))
    entries = download.load_registry(str(download.REGISTRY))
    return {name: local_entry(entry, server.files, server.base) for name, entry in entries.items()}


@pytest.fixture(autouse=True)
def tiny_mpi3d(monkeypatch):
    monkeypatch.setitem(slowvae_files.READERS, "mpi3d", partial(read_mpi3d, sizes=MPI3D_TINY))


def one_file_entry(name: str, body: bytes, server, mode: str = "ok", checksum: dict | None = None,
                   unpack: str | None = None) -> dict:
    """A registry entry of one served file landing in DIR/one, read as KITTI Masks (not opened: --no-open)."""
    server.files[name] = body
    return {"title": name, "folder": "one", "data": "one", "reader": "kittimasks", "uses": "python main_kitti.py",
            "files": [{"name": name, "size": None, "unpack": unpack, "checksum": checksum,
                       "urls": [f"{server.base}/{mode}/{name}"]}]}


def run(tmp_path: Path, registry: dict, *flags: str) -> None:
    download.main([*registry, "--registry", write_registry(tmp_path / "registry.json", registry),
                   "--data-dir", str(tmp_path / "data"), *FAST, *flags])


def error(tmp_path: Path, registry: dict, *flags: str) -> str:
    with pytest.raises(SystemExit) as e:
        run(tmp_path, registry, *flags)
    message = str(e.value)
    assert message.startswith("error: ") and "\n" not in message
    return message


def test_every_name_downloads_unpacks_opens_and_is_not_fetched_twice(server, registry, tmp_path, capsys):
    run(tmp_path, registry)
    out = capsys.readouterr().out
    data = tmp_path / "data"
    for name, entry in registry.items():
        assert f"{name} is ready: {download.uses(entry, str(data))}" in out
    assert out.count("opened ") == len(registry)
    assert f"opened {data / '3dident' / 'test'}: 10 renders, latents (10, 10), images (3, 8, 8)" in out
    assert f"opened {data / 'mpi3d'}: 48 images" in out and f"opened {data / 'smallnorb'}: 48 images" in out
    assert f"opened {data / 'cars3d' / 'data' / 'cars'}: 12 images" in out
    assert np.array_equal(np.load(data / "3dident" / "train" / "raw_latents.npy"),
                          np.load(io.BytesIO(tarfile.open(fileobj=io.BytesIO(server.files["3dident_train.tar"]))
                                             .extractfile("3dident/train/raw_latents.npy").read())))
    assert (data / "kitti" / "kitti_peds_v2.pickle").read_bytes() == server.files["kitti_peds_v2.pickle"]
    assert (data / "natural" / "natural_sprites.npz").is_file()
    assert not [p for p in data.rglob("*") if p.name.endswith((".tar", ".gz", ".part", ".bad"))]  # archives removed
    records = json.loads((data / "checksums.json").read_text())
    assert set(records) == {"kitti/kitti_peds_v2.pickle", "natural/downscale_keepaspect.csv"}
    assert records["kitti/kitti_peds_v2.pickle"]["sha256"] == hashlib.sha256(
        server.files["kitti_peds_v2.pickle"]).hexdigest()
    requests = len(server.log)
    run(tmp_path, registry)
    again = capsys.readouterr().out
    assert len(server.log) == requests and "was unpacked before" in again and "is already there" in again
    assert "matches the one recorded" in again and again.count(" is ready: ") == len(registry)


def test_a_dropped_connection_resumes_with_range(server, tmp_path, capsys):
    body = np.random.default_rng(1).bytes(200_000)
    md5 = {"algorithm": "md5", "value": hashlib.md5(body).hexdigest(), "source": "the test"}
    run(tmp_path, {"dropped": one_file_entry("dropped.bin", body, server, "drop", md5)}, "--no-open")
    assert (tmp_path / "data" / "one" / "dropped.bin").read_bytes() == body
    assert [r for p, r in server.log if p == "/drop/dropped.bin"] == [None, "bytes=100000-"]


def test_a_server_that_ignores_range_restarts_from_zero(server, tmp_path, capsys):
    body = np.random.default_rng(2).bytes(50_000)
    md5 = {"algorithm": "md5", "value": hashlib.md5(body).hexdigest(), "source": "the test"}
    (tmp_path / "data" / "one").mkdir(parents=True)
    (tmp_path / "data" / "one" / "norange.bin.part").write_bytes(body[:20_000])  # an earlier, interrupted download
    run(tmp_path, {"norange": one_file_entry("norange.bin", body, server, "norange", md5)}, "--no-open")
    assert "the server ignores Range requests, restarting from byte 0" in capsys.readouterr().out
    assert (tmp_path / "data" / "one" / "norange.bin").read_bytes() == body


def test_a_checksum_mismatch_keeps_no_file_where_a_reader_looks(server, registry, tmp_path, capsys):
    wrong = {"algorithm": "md5", "value": "0" * 32, "source": "somewhere"}
    message = error(tmp_path, {"bad": one_file_entry("bad.bin", b"x" * 1000, server, checksum=wrong)})
    folder = tmp_path / "data" / "one"
    assert f"the md5 of bad.bin is {hashlib.md5(b'x' * 1000).hexdigest()}, but {'0' * 32} was published in " \
           f"somewhere" in message and str(folder / "bad.bin.bad") in message
    assert sorted(p.name for p in folder.iterdir()) == ["bad.bin.bad"]


def test_an_mpi3d_mismatch_says_the_files_moved_and_can_be_accepted(server, registry, tmp_path, capsys):
    entry = json.loads(json.dumps(registry["mpi3d_toy"]))
    entry["files"][0]["checksum"]["value"] = "0" * 32
    message = error(tmp_path, {"mpi3d_toy": entry})
    assert "MPI3D's files moved hosts" in message and "--no-published-checksum" in message
    folder = tmp_path / "data" / "mpi3d"
    os.replace(folder / "mpi3d_toy.npz.bad", folder / "mpi3d_toy.npz")
    run(tmp_path, {"mpi3d_toy": entry}, "--no-published-checksum")
    out = capsys.readouterr().out
    assert "recorded in" in out and "mpi3d_toy is ready: python main_kitti.py --dataset mpi3d --mpi3d-variant toy" in out
    assert set(json.loads((tmp_path / "data" / "checksums.json").read_text())) == {"mpi3d/mpi3d_toy.npz"}


def unsafe_tar(kind: str) -> bytes:
    """A tar with one good file and one member that would land outside (or a device); for throughlink, a link
    to its own folder (`l -> .`, harmless alone) before it, and a path that climbs out through the link."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        good = tarfile.TarInfo("inside/good.txt")
        good.size = 4
        tar.addfile(good, io.BytesIO(b"good"))
        if kind == "throughlink":
            link = tarfile.TarInfo("l")
            link.type, link.linkname = tarfile.SYMTYPE, "."
            tar.addfile(link)
        bad = tarfile.TarInfo({"dotdot": "inside/../../evil.txt", "absolute": "/tmp/evil.txt",
                               "throughlink": "l/../evil.txt"}.get(kind, "inside/x"))
        bad.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "device": tarfile.CHRTYPE}.get(
            kind, tarfile.REGTYPE)
        bad.linkname = {"symlink": "../../evil.txt", "hardlink": "../evil.txt"}.get(kind, "")
        bad.size = 4 if bad.type == tarfile.REGTYPE else 0
        tar.addfile(bad, io.BytesIO(b"evil") if bad.size else None)
    return buffer.getvalue()


@pytest.mark.parametrize("kind, reason", [("dotdot", "climbs out with '..'"), ("absolute", "an absolute path"),
                                          ("symlink", "symbolic link pointing out"),
                                          ("hardlink", "hard link pointing out"), ("device", "a device"),
                                          ("throughlink", "'l/../evil.txt', a path that leads outside through a "
                                                          "symbolic link")])
def test_a_tar_member_that_would_land_outside_is_refused(server, tmp_path, capsys, kind, reason):
    entry = one_file_entry(f"unsafe_{kind}.tar", unsafe_tar(kind), server, unpack="tar")
    message = error(tmp_path, {"unsafe": entry})
    assert "refused member" in message and reason in message and "nothing was unpacked" in message
    folder = tmp_path / "data" / "one"
    assert sorted(p.name for p in folder.iterdir()) == [f"unsafe_{kind}.tar"]  # verified archive kept, no member
    assert not list(tmp_path.rglob("evil.txt")) and not (tmp_path / "data" / "evil.txt").exists()


def test_keep_archives_keeps_the_verified_tar_and_a_second_run_skips_it(server, tmp_path, capsys):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo("inside/good.txt")
        member.size = 4
        tar.addfile(member, io.BytesIO(b"good"))
    entry = {"kept": one_file_entry("kept.tar", buffer.getvalue(), server, unpack="tar")}
    run(tmp_path, entry, "--no-open", "--keep-archives")
    folder = tmp_path / "data" / "one"
    assert (folder / "inside" / "good.txt").read_bytes() == b"good" and (folder / "kept.tar").is_file()
    assert sorted(p.name for p in folder.iterdir()) == [".kept.tar.unpacked", "inside", "kept.tar"]  # no scratch
    run(tmp_path, entry, "--no-open")
    assert f"{folder / 'kept.tar'} was unpacked before" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [(lambda e: e.pop("uses"), "x lacks uses"),
                                             (lambda e: e["files"][0].pop("urls"), "x lacks urls"),
                                             (lambda e: e.update(reader="imagenet"), "unknown reader or unpacker")])
def test_a_malformed_registry_is_one_line(server, tmp_path, change, message):
    entry = one_file_entry("never.bin", b"", server)
    change(entry)
    assert message in error(tmp_path, {"x": entry})


def test_trust_on_first_use_records_once_the_reader_opens_then_compares(server, registry, tmp_path, capsys):
    body = server.files["kitti_peds_v2.pickle"]
    entry = {"kitti_masks": served_as(registry["kitti_masks"], body, server, "tofu/")}
    records, target = tmp_path / "data" / "checksums.json", tmp_path / "data" / "kitti" / "kitti_peds_v2.pickle"
    run(tmp_path, entry, "--no-open")
    assert "not recorded: the sha256 of kitti/kitti_peds_v2.pickle" in capsys.readouterr().out
    assert not records.exists()
    run(tmp_path, entry)  # the file already there is recorded once its reader opens it
    digest = hashlib.sha256(body).hexdigest()
    assert f"the sha256 of kitti/kitti_peds_v2.pickle is recorded in {records}" in capsys.readouterr().out
    assert json.loads(records.read_text())["kitti/kitti_peds_v2.pickle"]["sha256"] == digest
    target.unlink()
    server.files["tofu/kitti_peds_v2.pickle"] = b"changed on the server"
    message = error(tmp_path, entry)
    assert f"but {records} recorded {digest} on its first download" in message
    assert not target.exists()
    server.files["tofu/kitti_peds_v2.pickle"] = body
    run(tmp_path, entry)
    assert f"sha256 {digest} matches the one recorded" in capsys.readouterr().out


@pytest.mark.parametrize("size", [None, "registry"])
def test_a_body_of_unknown_length_is_trusted_only_once_its_length_is_known(server, registry, tmp_path, capsys, size):
    """No Content-Length, the connection closed halfway: without the registry's size the end cannot be told from a
    cut, so nothing is recorded and the .part is kept; the next run resumes it with Range, whose Content-Range gives
    the length. With the registry's size, the cut is seen and resumed at once."""
    body = server.files["kitti_peds_v2.pickle"]
    entry = {"kitti_masks": served_as(registry["kitti_masks"], body, server, f"nolength_{size}/", "nolength")}
    entry["kitti_masks"]["files"][0]["size"] = size and len(body)
    part, half = tmp_path / "data" / "kitti" / "kitti_peds_v2.pickle.part", len(body) // 2
    records = tmp_path / "data" / "checksums.json"
    if size is None:
        message = error(tmp_path, entry)
        assert f"the server sent {half:,} bytes of kitti_peds_v2.pickle without saying how many there are" in message
        assert f"{part} is kept: run again to resume it" in message
        assert part.read_bytes() == body[:half] and not records.exists()
    run(tmp_path, entry)
    assert (tmp_path / "data" / "kitti" / "kitti_peds_v2.pickle").read_bytes() == body and not part.exists()
    assert json.loads(records.read_text())["kitti/kitti_peds_v2.pickle"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert [r for p, r in server.log if p.startswith(f"/nolength/nolength_{size}/")] == [None, f"bytes={half}-"]


def junk_tar(junk: bytes) -> bytes:
    """A tar of `junk` in the 3DIdent test folder: it unpacks, but is no 3DIdent folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo("3dident/test/junk.bin")
        member.size = len(junk)
        tar.addfile(member, io.BytesIO(junk))
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["kitti_masks", "dsprites", "3dident_test"])
def test_a_file_its_reader_cannot_open_is_not_recorded_and_the_line_names_what_to_delete(server, registry, tmp_path,
                                                                                         name):
    """Random bytes (for 3DIdent, a tar of them) that pass the published checksum, or have none: KITTI Masks' sha256
    is not recorded; the line names the file to delete, or the marker of the one unpacked (no `.*.unpacked` that
    does not exist)."""
    junk = np.random.default_rng(3).bytes(1000)
    entry = served_as(registry[name], junk_tar(junk) if name == "3dident_test" else junk, server, "junk/")
    message = error(tmp_path, {name: entry})
    target = tmp_path / "data" / entry["folder"] / entry["files"][0]["name"]
    delete = download.marker(target) if entry["files"][0]["unpack"] else target
    assert f"error: {name} is downloaded, but its reader cannot open it (" in message
    assert message.endswith(f"; to download or unpack it again, delete {delete}") and delete.exists()
    assert ("the sha256 of kitti/kitti_peds_v2.pickle is not recorded" in message) == (name == "kitti_masks")
    assert not (tmp_path / "data" / "checksums.json").exists()


def test_a_body_that_is_not_a_tar_is_one_line(server, tmp_path):
    entry = {"x": one_file_entry("notatar.tar", b"no tar " * 1000, server, unpack="tar")}
    message = error(tmp_path, entry, "--no-open")
    assert message.endswith("notatar.tar is corrupt or not a tar file (ReadError: file could not be opened "
                            "successfully); delete it and run again")
    assert not (tmp_path / "data" / "checksums.json").exists()


def test_ctrl_c_is_one_line_with_status_130_and_keeps_the_part_to_resume(server, tmp_path, capsys, monkeypatch):
    class Interrupting:
        """The progress bar, Ctrl-C pressed once the first chunk is written."""
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

        def update(self, n: int) -> None:
            raise KeyboardInterrupt
    body = np.random.default_rng(4).bytes(download.CHUNK + 1000)
    md5 = {"algorithm": "md5", "value": hashlib.md5(body).hexdigest(), "source": "the test"}
    entry = {"ctrl_c": one_file_entry("ctrl_c.bin", body, server, checksum=md5)}
    part = tmp_path / "data" / "one" / "ctrl_c.bin.part"
    with monkeypatch.context() as patch, pytest.raises(SystemExit) as e:
        patch.setattr(download, "tqdm", Interrupting)
        run(tmp_path, entry, "--no-open")
    assert e.value.code == 130
    assert capsys.readouterr().err == f"error: interrupted; {part} is kept, and the next run resumes it\n"
    kept = part.read_bytes()
    assert 0 < len(kept) < len(body) and kept == body[:len(kept)]
    run(tmp_path, entry, "--no-open")
    assert (tmp_path / "data" / "one" / "ctrl_c.bin").read_bytes() == body
    assert [r for p, r in server.log if p == "/ok/ctrl_c.bin"] == [None, f"bytes={len(kept)}-"]


def test_an_unknown_name_is_one_line_and_writes_nothing(registry, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        download.main(["kitti", "--data-dir", str(tmp_path / "data")])
    assert str(e.value).startswith("error: unknown dataset 'kitti'; known: 3dident_train, 3dident_test, kitti_masks")
    assert not (tmp_path / "data").exists()


def test_no_network_names_the_url_the_error_and_where_to_put_the_file(registry, tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    entry = json.loads(json.dumps(registry["kitti_masks"]))
    entry["files"][0]["urls"] = [f"http://127.0.0.1:{port}/kitti_peds_v2.pickle"]
    message = error(tmp_path, {"kitti_masks": entry})
    target = tmp_path / "data" / "kitti" / "kitti_peds_v2.pickle"
    assert f"cannot download http://127.0.0.1:{port}/kitti_peds_v2.pickle (URLError: [Errno" in message
    assert f"Connection refused); to put it there by hand, save it as {target} (none published" in message
    assert not target.exists()


@pytest.mark.parametrize("mode, expected", [("html", "sent an HTML page, not the data"),
                                            ("cut", "the body stopped at byte 8,750 of 10,000")])
def test_html_and_a_cut_body_leave_no_file_in_place(server, tmp_path, capsys, mode, expected):
    """A body cut at half its rest every time: three attempts (--retries 2), each resumed from the last."""
    message = error(tmp_path, {"x": one_file_entry(f"{mode}.bin", b"y" * 10_000, server, mode)})
    assert expected in message
    assert not (tmp_path / "data" / "one" / f"{mode}.bin").exists()
    if mode == "cut":  # kept for the next run to resume
        assert (tmp_path / "data" / "one" / "cut.bin.part").read_bytes() == b"y" * 8750
        assert [r for p, r in server.log if p == "/cut/cut.bin"] == [None, "bytes=5000-", "bytes=7500-"]


def test_a_full_disk_is_one_line(server, tmp_path, capsys, monkeypatch):
    class Full(io.BytesIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")
    def writing_fails(path, mode="r", *args, **kwargs):
        return Full() if "w" in mode or "a" in mode else open(path, mode, *args, **kwargs)
    monkeypatch.setattr(download, "open", writing_fails, raising=False)
    message = error(tmp_path, {"full": one_file_entry("full.bin", b"z" * 1000, server)})
    assert "full.bin.part: the disk is full" in message
    assert not (tmp_path / "data" / "one" / "full.bin").exists()


def test_list_shows_every_name_with_its_checksum_source_and_command(capsys):
    download.main(["--list", "--data-dir", "D"])
    out = capsys.readouterr().out
    for name, entry in download.load_registry(str(download.REGISTRY)).items():
        assert f"{name}: {entry['title']}" in out and f"  then      {download.uses(entry, 'D')}" in out
    assert "published in tensorflow/datasets tensorflow_datasets/url_checksums/shapes3d.txt" in out
    assert "file      D/kitti/kitti_peds_v2.pickle (size unknown)" in out
    assert "none published: the first download's sha256 is recorded in D/checksums.json" in out


PARSERS = {"main_3dident.py": main_3dident.get_args_parser, "main_kitti.py": main_kitti.get_args_parser,
           "tools/download.py": download.get_args_parser}


def parse(command: str) -> None:
    words = shlex.split(command)
    assert words[0] == "python" and words[1] in PARSERS, command
    PARSERS[words[1]]().parse_args(words[2:])


def test_every_command_of_the_registry_and_the_docs_parses():
    for entry in download.load_registry(str(download.REGISTRY)).values():
        parse(download.uses(entry, "data"))
    text = (REPO / "docs" / "datasets.md").read_text()
    commands = re.findall(r"^python .*$", text, re.M) + re.findall(r"`(python [^`]*)`", text)
    assert len(commands) == 20
    for command in commands:
        parse(command)


def test_the_readers_point_at_registry_names():
    names = download.load_registry(str(download.REGISTRY))
    for message in [*HOW_TO_GET.values(), KITTI_HOW_TO_GET]:
        if "tools/download.py" in message:
            assert message.split("tools/download.py ")[1].split()[0] in names, message
    assert "storage.googleapis.com" not in HOW_TO_GET["MPI3D"]
