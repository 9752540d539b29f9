"""Download, verify and unpack the released datasets the project reads, then open them with the project's readers.

    python tools/download.py --list
    python tools/download.py kitti_masks dsprites --data-dir data

The registry (datasets/registry.json) gives, per name: its files, their URLs, sizes where known, the published
checksum with its algorithm and where it was published, the folder under --data-dir they land in, and the command
that then uses them. For each file:
1. streamed to FILE.part (tqdm bar), resumed with an HTTP Range request after an interruption (from byte 0 when the
   server ignores Range), retried with exponential backoff on connection errors, the next URL tried after that;
2. verified before the rename to FILE: the published checksum, or where none is published (KITTI Masks, Natural
   Sprites) the sha256 recorded in DIR/checksums.json by the first download (trust on first use: recorded only for
   a file whose whole length is known, from the server or the registry, once its reader has opened it);
3. unpacked: a tar refuses any member that would land outside its folder (absolute paths, `..`, links pointing
   out, devices) before writing anything, extracts into a hidden folder and moves the result into place; `.gz`
   files are gunzipped; the Natural Sprites CSV is converted to natural_sprites.npz. The archive is removed
   after a successful unpack unless --keep-archives, and `.FILE.unpacked` records the unpack;
4. opened with the project's own reader, and the command that uses it printed.
Every failure is one line, `error: ...` (exit 1), and leaves no partial or unverified file where a reader looks;
Ctrl-C too (exit 130), keeping FILE.part for the next run to resume.
"""
from __future__ import annotations

import argparse
import errno
import gzip
import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import time
import zlib
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tqdm import tqdm  # noqa: E402

from io_utils import atomic_write, die  # noqa: E402

REGISTRY = REPO / "datasets" / "registry.json"
RECORDS = "checksums.json"  # trust-on-first-use sha256 of the files without a published checksum
CHUNK = 1 << 20
NETWORK_ERRORS = (URLError, ConnectionError, TimeoutError, http.client.HTTPException)
UNPACK_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


class DownloadError(Exception):
    """A failure the script reports as one line."""


class RetryableError(DownloadError):
    """A body cut short, or maybe cut short (its length unknown): FILE.part is kept, the next attempt resumes it."""


class Interrupted(DownloadError):
    """Ctrl-C: the script stops with exit status 130."""


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Download, verify and unpack the released datasets "
                                                 "(docs/datasets.md).")
    parser.add_argument("names", nargs="*", help="registry names (see --list), e.g. kitti_masks dsprites")
    parser.add_argument("--data-dir", default="data",
                        help="root folder; each dataset lands in its own subfolder (default data: KITTI Masks "
                             "then lands in data/kitti, main_kitti.py's default --data-dir)")
    parser.add_argument("--list", action="store_true", help="print every name's files, sizes, URLs, checksums, "
                                                            "where they land and the command that uses them")
    parser.add_argument("--registry", default=str(REGISTRY), help="registry JSON file (default datasets/registry.json)")
    parser.add_argument("--keep-archives", action="store_true", help="keep the archives after unpacking them")
    parser.add_argument("--no-published-checksum", action="store_true",
                        help="verify by trust on first use (DIR/checksums.json) instead of the published checksum: "
                             "for MPI3D, whose files moved hosts after its md5s were published")
    parser.add_argument("--no-open", action="store_true",
                        help="skip opening the data with the project's reader (MPI3D loads 13 GB into memory)")
    parser.add_argument("--retries", type=int, default=4, help="retries per URL after a connection error (4)")
    parser.add_argument("--retry-wait", type=float, default=2.0,
                        help="seconds before the first retry, doubled after each (2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a retry (60)")
    return parser


ENTRY_KEYS = {"title", "folder", "files", "data", "reader", "uses"}
FILE_KEYS = {"name", "urls", "size", "checksum", "unpack"}


def load_registry(path: str) -> dict:
    """The registry's entries, checked to have the keys this script reads."""
    try:
        with open(path) as f:
            registry = json.load(f)
    except (OSError, ValueError) as e:
        raise DownloadError(f"cannot read the registry {path} ({e})") from None
    for name, entry in registry.items():
        missing = ENTRY_KEYS - set(entry) or next((FILE_KEYS - set(f) for f in entry["files"] if FILE_KEYS - set(f)),
                                                  None)
        if missing:
            raise DownloadError(f"registry {path}: {name} lacks {', '.join(sorted(missing))}")
        unknown = {entry["reader"]} - set(OPENERS) | {f["unpack"] for f in entry["files"]} - {None, *UNPACKERS}
        if unknown:
            raise DownloadError(f"registry {path}: {name} names an unknown reader or unpacker {unknown.pop()!r}")
    return registry


def size_text(size: int | None) -> str:
    return "size unknown" if size is None else f"{size:,} bytes"


def checksum_text(file: dict, data_dir: str | Path) -> str:
    checksum = file["checksum"]
    if checksum is None:
        return f"none published: the first download's sha256 is recorded in {Path(data_dir) / RECORDS}"
    caveat = f"; {checksum['caveat']}" if "caveat" in checksum else ""
    return f"{checksum['algorithm']} {checksum['value']}, published in {checksum['source']}{caveat}"


UNPACK_TEXT = {None: "", "tar": "; untarred, then removed", "gunzip": "; gunzipped, then removed",
               "natural_csv": "; converted to natural_sprites.npz"}


def describe(name: str, entry: dict, data_dir: str) -> str:
    """The --list block of one registry name."""
    lines = [f"{name}: {entry['title']}"]
    for file in entry["files"]:
        lines += [f"  file      {os.path.normpath(os.path.join(data_dir, entry['folder'], file['name']))} "
                  f"({size_text(file['size'])}{UNPACK_TEXT[file['unpack']]})",
                  *(f"  url       {url}" for url in file["urls"]),
                  f"  checksum  {checksum_text(file, data_dir)}"]
    lines += [f"  data in   {os.path.join(data_dir, entry['data'])}", f"  then      {uses(entry, data_dir)}"]
    return "\n".join(lines)


def uses(entry: dict, data_dir: str) -> str:
    return entry["uses"].format(data=os.path.join(data_dir, entry["data"]))


# --- download -------------------------------------------------------------------------------------------------

def range_total(headers) -> int | None:
    """The whole file's length in a Content-Range header ("bytes a-b/total", "bytes */total"); None without."""
    total = (headers.get("Content-Range") or "").rpartition("/")[2]
    return int(total) if total.isdigit() else None


def stream(url: str, part: Path, size: int | None, timeout: float) -> int | None:
    """Append the rest of `url` to `part` (a Range request from its current size); from byte 0 when the server
    ignores Range. Returns the whole file's length as the server declared it (Content-Range, Content-Length;
    None when it declared none). Raises RetryableError when the body stops short of that length, or of the
    registry's `size` when the server declared none."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        offset = 0
    headers = {"User-Agent": "cl-ica-download/1"} | ({"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as e:
        if e.code == 416 and offset:  # nothing after `offset`: the .part is complete
            return range_total(e.headers)
        raise
    with response:
        if offset and response.status != 206:
            print(f"{url}: the server ignores Range requests, restarting from byte 0")
            offset = 0
        elif offset and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            raise DownloadError(f"{url} answered a request for bytes {offset}- with the bytes "
                                f"{response.headers.get('Content-Range')!r}")
        length = response.headers.get("Content-Length")
        declared = range_total(response.headers)
        if declared is None and length is not None:
            declared = offset + int(length)
        total = size if declared is None else declared
        chunk = response.read(CHUNK)
        if "html" in response.headers.get("Content-Type", "") or (
                offset == 0 and chunk.lstrip()[:14].lower().startswith((b"<!doctype html", b"<html"))):
            raise DownloadError(f"{url} sent an HTML page, not the data (moved, or behind a login?)")
        with open(part, "ab" if offset else "wb") as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                                             desc=part.name[:-5], disable=None) as bar:
            while chunk:
                f.write(chunk)
                bar.update(len(chunk))
                chunk = response.read(CHUNK)
    received = part.stat().st_size
    if total is not None and received < total:
        raise RetryableError(f"the body stopped at byte {received:,} of {total:,}")
    return declared


def fetch(urls: list[str], part: Path, size: int | None, args: argparse.Namespace) -> int | None:
    """`urls` (mirrors, in turn) into `part`, each retried --retries times with backoff; DownloadError after.
    Returns the whole length the server declared (None: it declared none)."""
    errors = []
    for url in urls:
        for attempt in range(args.retries + 1):
            try:
                return stream(url, part, size, args.timeout)
            except HTTPError as e:
                error = e
                if e.code < 500 and e.code not in (408, 429):
                    break
            except (*NETWORK_ERRORS, RetryableError) as e:
                error = e
            if attempt < args.retries:
                time.sleep(args.retry_wait * 2 ** attempt)
        reason = error.reason if type(error) is URLError else error  # the socket's error, not a wrapper
        errors.append(f"{url} ({type(error).__name__}: {reason})")
    raise DownloadError("cannot download " + "; ".join(errors))


# --- verification ----------------------------------------------------------------------------------------------

def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_records(data_dir: Path) -> dict:
    path = data_dir / RECORDS
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError) as e:
        raise DownloadError(f"{path} is not readable JSON ({e}): fix or delete it") from None


def verify(path: Path, target: Path, file: dict, data_dir: Path, args: argparse.Namespace,
           complete: bool = True) -> tuple[str, dict]:
    """Check `path` (the download of `file`, to be `target`) against its published checksum, else against the
    sha256 recorded in DIR/checksums.json on first use. Returns what was checked, and the record to add to
    DIR/checksums.json once the reader has opened the file (empty: none). Raises DownloadError on a mismatch,
    RetryableError when a first use finds the file not `complete` (its whole length unknown: a body cut short
    cannot be told from a whole one). A file already at `target` counts as complete: this script puts a file
    there only once its length is known, and one put there by hand is the user's to vouch for."""
    if file["size"] is not None and path.stat().st_size != file["size"]:
        raise DownloadError(f"{target.name} has {path.stat().st_size:,} bytes, the registry says {file['size']:,}")
    checksum = file["checksum"]
    if checksum is not None and not args.no_published_checksum:
        actual = file_digest(path, checksum["algorithm"])
        if actual != checksum["value"]:
            caveat = f"; {checksum['caveat']}" if "caveat" in checksum else ""
            raise DownloadError(f"the {checksum['algorithm']} of {target.name} is {actual}, but {checksum['value']} was "
                                f"published in {checksum['source']}{caveat}")
        return f"{checksum['algorithm']} matches the one published in {checksum['source']}", {}
    key = target.relative_to(data_dir).as_posix()
    records, actual = read_records(data_dir), file_digest(path, "sha256")
    if key in records:
        if records[key]["sha256"] != actual:
            raise DownloadError(f"the sha256 of {target.name} is {actual}, but {data_dir / RECORDS} recorded "
                                f"{records[key]['sha256']} on its first download: the file changed on the server "
                                "or on the way")
        return f"sha256 {actual} matches the one recorded in {data_dir / RECORDS} on first use", {}
    if not complete:
        raise RetryableError(f"the server sent {path.stat().st_size:,} bytes of {target.name} without saying how many "
                             "there are, and no checksum is published: a body cut short cannot be told from a whole "
                             "one, so it is not trusted on first use")
    return f"no checksum is published: sha256 {actual}", {key: {"sha256": actual, "url": file["urls"][0]}}


def record(data_dir: Path, new: dict) -> str:
    """Add `new` (trust-on-first-use records) to DIR/checksums.json; says what was recorded."""
    records = read_records(data_dir) | new
    atomic_write(data_dir / RECORDS, lambda f: f.write((json.dumps(records, indent=2) + "\n").encode()))
    return f"the sha256 of {', '.join(new)} is recorded in {data_dir / RECORDS}; later downloads are compared with it"


def disk_error(path, error: OSError) -> DownloadError:
    full = "the disk is full: free space and run again, a partial download resumes" \
        if error.errno == errno.ENOSPC else error.strerror or str(error)
    return DownloadError(f"cannot write {path}: {full}")


def download(file: dict, target: Path, data_dir: Path, args: argparse.Namespace) -> dict:
    """`file` verified at `target` (an existing one is checked, not fetched again). A download that fails the
    check is moved to FILE.bad, where no reader looks; one of unknown length is kept as FILE.part. Returns the
    trust-on-first-use record to add once the reader has opened the file (`verify`)."""
    if target.exists():
        try:
            checked, new = verify(target, target, file, data_dir, args)
        except DownloadError as e:
            raise DownloadError(f"{e}; {target} was there before this run: delete it to download it afresh") from None
        print(f"{target} is already there: {checked}")
        return new
    part = target.with_name(target.name + ".part")
    if file["size"] is not None:
        need, free = file["size"] - (part.stat().st_size if part.exists() else 0), shutil.disk_usage(target.parent).free
        if free < need:
            raise DownloadError(f"not enough space for {target}: it needs {need:,} more bytes, {free:,} are free")
    try:
        declared = fetch(file["urls"], part, file["size"], args)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {part} is kept, and the next run resumes it") from None
    except OSError as e:  # network errors are DownloadErrors by now: this is the disk
        raise disk_error(part, e) from None
    except DownloadError as e:
        raise DownloadError(f"{e}; to put it there by hand, save it as {target} ({checksum_text(file, data_dir)}) and run "
                            "again") from None
    complete = file["size"] is not None or declared == part.stat().st_size
    try:
        checked, new = verify(part, target, file, data_dir, args, complete)
    except RetryableError as e:
        raise DownloadError(f"{e}; {part} is kept: run again to resume it (a server that answers the Range request "
                            f"says the length), or give the file's size in {args.registry}") from None
    except DownloadError as e:
        bad = target.with_name(target.name + ".bad")
        os.replace(part, bad)
        accept = (f"; to accept it, rename it to {target} and run again with --no-published-checksum"
                  if file["checksum"] and "caveat" in file["checksum"] else "")
        raise DownloadError(f"{e}; the file is kept as {bad}, where no reader looks{accept}") from None
    os.replace(part, target)
    print(f"{target}: {checked}")
    return new


# --- unpacking -------------------------------------------------------------------------------------------------

def escapes(path: str) -> bool:
    """Whether the archive path `path` is absolute or climbs out of the folder with `..`."""
    normal = os.path.normpath(path)
    return os.path.isabs(path) or normal == ".." or normal.startswith("../")


def refusal(member: tarfile.TarInfo) -> str | None:
    """Why `member` must not be extracted (None: it is safe)."""
    if os.path.isabs(member.name):
        return "an absolute path"
    if escapes(member.name):
        return "a path that climbs out with '..'"
    if member.issym() and escapes(os.path.join(os.path.dirname(member.name), member.linkname)):
        return f"a symbolic link pointing out, to {member.linkname!r}"
    if member.islnk() and escapes(member.linkname):
        return f"a hard link pointing out, to {member.linkname!r}"
    if member.isdev():
        return "a device or pipe"
    return None


def merge(src: Path, dst: Path) -> None:
    """Move the tree `src` into `dst` (folders merged, files replaced)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir() and not target.is_symlink():
            merge(entry, target)
        else:
            os.replace(entry, target)


def untar(archive: Path) -> None:
    """Extract `archive` into its folder, refusing it whole when a member would land outside."""
    folder = archive.parent
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            if reason := refusal(member):
                raise DownloadError(f"{archive}: refused member {member.name!r}, {reason}; nothing was unpacked")
        need = sum(m.size for m in members if m.isfile())
        if shutil.disk_usage(folder).free < need:
            raise DownloadError(f"not enough space to unpack {archive}: it needs {need:,} bytes, "
                                f"{shutil.disk_usage(folder).free:,} are free")
        scratch = folder / f".{archive.name}.unpacking"
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            tar.extractall(scratch, members=members, filter="data")
            merge(scratch, folder)
        except tarfile.FilterError as e:  # a path through a link extracted before it, e.g. `l -> .` then `l/../x`
            raise DownloadError(f"{archive}: refused member {e.tarinfo.name!r}, a path that leads outside through a "
                                "symbolic link; nothing was unpacked") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def gunzip(archive: Path) -> None:
    with gzip.open(archive) as source:
        atomic_write(archive.with_suffix(""), lambda f: shutil.copyfileobj(source, f, CHUNK))


def convert_natural_csv(csv: Path) -> None:
    from tools.slowvae_data.natural_sprites import sequences_from_csv, write_sequences
    try:
        data = sequences_from_csv(str(csv))
    except (ValueError, SyntaxError, IndexError, UnicodeDecodeError) as e:
        raise DownloadError(f"{csv} is not the Natural Sprites CSV ({type(e).__name__}: {e})") from None
    print(f"converted {csv} to {write_sequences(str(csv.parent), data)}")


UNPACKERS = {"tar": untar, "gunzip": gunzip, "natural_csv": convert_natural_csv}
ARCHIVES = ("tar", "gunzip")  # removed after unpacking, unless --keep-archives


def marker(path: Path) -> Path:
    """The file recording that `path` was unpacked."""
    return path.with_name(f".{path.name}.unpacked")


def unpack(path: Path, kind: str, keep: bool) -> None:
    try:
        UNPACKERS[kind](path)
    except UNPACK_ERRORS as e:
        reason = str(e).splitlines()[0].rstrip(":")  # tarfile's ReadError lists every compression it tried
        raise DownloadError(f"{path} is corrupt or not a {kind} file ({type(e).__name__}: {reason}); delete it and "
                            "run again") from None
    atomic_write(marker(path), lambda f: f.write(b"unpacked\n"))
    if kind in ARCHIVES and not keep:
        path.unlink()
        print(f"unpacked and removed {path}")


# --- opening with the project's readers ------------------------------------------------------------------------

def open_3dident(path: str, entry: dict) -> str:
    from datasets.threedident_dataset import SequentialThreeDIdentDataset
    data = SequentialThreeDIdentDataset(path)
    _, image = data[0]
    return f"{len(data)} renders, latents {tuple(data.folder.latents.shape)}, images {tuple(image.shape)}"


def open_kitti(path: str, entry: dict) -> str:
    from kitti_masks.dataset import KittiMasks
    return f"{len(KittiMasks.from_dir(path))} frame pairs"


def open_natural(path: str, entry: dict) -> str:
    from datasets.natural_sprites import NaturalSprites
    return f"{len(NaturalSprites.from_dir(path))} frame pairs"


def open_grid(path: str, entry: dict) -> str:
    from datasets.slowvae_files import READERS
    variant = {"variant": entry["variant"]} if "variant" in entry else {}
    grid = READERS[entry["reader"]](path, **variant)
    return f"{len(grid.images)} images over {' × '.join(f'{n} {s}' for n, s in zip(grid.names, grid.sizes))}"


OPENERS = {"3dident": open_3dident, "kittimasks": open_kitti, "natural": open_natural, "dsprites": open_grid,
           "shapes3d": open_grid, "mpi3d": open_grid, "cars3d": open_grid, "smallnorb": open_grid}


def redo_hint(entry: dict, folder: Path) -> str:
    """What to delete to get `entry` afresh: the marker of each file unpacked, else the file itself."""
    paths = [marker(path) if marker(path).exists() else path for path in (folder / f["name"] for f in entry["files"])]
    return f"to download or unpack it again, delete {' '.join(map(str, paths))}"


def open_data(name: str, entry: dict, folder: Path, new: dict, args: argparse.Namespace) -> None:
    """Open `name`'s data with the project's reader, then record `new` (trust-on-first-use records): a file
    the reader cannot open is not trusted. With --no-open nothing is recorded."""
    path = os.path.join(args.data_dir, entry["data"])
    if args.no_open:
        if new:
            print(f"not recorded: the sha256 of {', '.join(new)} (trust on first use records a file once its reader "
                  "has opened it; run again without --no-open)")
        return
    try:
        print(f"opened {path}: {OPENERS[entry['reader']](path, entry)}")
    except ValueError as e:  # the readers' format errors
        unrecorded = f"; the sha256 of {', '.join(new)} is not recorded" if new else ""
        raise DownloadError(f"{name} is downloaded, but its reader cannot open it ({e}){unrecorded}; "
                            f"{redo_hint(entry, folder)}") from None
    if new:
        print(record(Path(args.data_dir), new))


def get(name: str, entry: dict, data_dir: Path, args: argparse.Namespace) -> None:
    """Download, verify, unpack and open one registry name; prints the command that uses it."""
    folder = data_dir / entry["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    new = {}
    for file in entry["files"]:
        target = folder / file["name"]
        if file["unpack"] and marker(target).exists():
            print(f"{target} was unpacked before")
            continue
        new |= download(file, target, data_dir, args)
        if file["unpack"]:
            unpack(target, file["unpack"], args.keep_archives)
    open_data(name, entry, folder, new, args)
    print(f"{name} is ready: {uses(entry, args.data_dir)}")


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    try:
        registry = load_registry(args.registry)
        if args.list:
            print("\n\n".join(describe(name, entry, args.data_dir) for name, entry in registry.items()))
            return
        if not args.names:
            raise DownloadError("name at least one dataset (python tools/download.py --list shows them)")
        unknown = [name for name in args.names if name not in registry]
        if unknown:
            raise DownloadError(f"unknown dataset {', '.join(map(repr, unknown))}; known: {', '.join(registry)}")
        if args.retries < 0 or args.retry_wait < 0 or args.timeout <= 0:
            raise DownloadError("--retries and --retry-wait must be >= 0, --timeout > 0")
        for name in args.names:
            get(name, registry[name], Path(args.data_dir), args)
    except (Interrupted, KeyboardInterrupt) as e:
        print(f"error: {str(e) or 'interrupted'}", file=sys.stderr)
        raise SystemExit(130) from None
    except DownloadError as e:
        die(str(e))
    except OSError as e:  # the disk, not the network (network errors are DownloadErrors by now)
        die(str(disk_error(e.filename or args.data_dir, e)))


if __name__ == "__main__":
    main()
