"""Fake TEE devices on plain directory trees: the test plays the kernel (or Gramine).

configfs-tsm and ``/dev/attestation`` are not ordinary files: the kernel (or
Gramine) creates an entry's attributes on ``mkdir``, computes ``outblob`` or
``quote`` when it is opened for reading, counts writes in ``generation``, and
lets ``rmdir`` remove an entry that still holds attributes. A plain directory
does none of that, so these fakes act on the test process's own file-system
calls through PEP 578 audit hooks, which CPython runs just before the system
call (``os.mkdir``, ``open``, ``os.rmdir``, ``os.chmod``). Code under test is
not touched: it performs the same calls it would against the real devices,
and the fake reacts like the device would. A hook may also raise ``OSError``
to play a failing device.

Audit hooks cannot be removed, so one dispatcher is installed once and does
nothing unless a fake device is active and the path is under its root.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tee.evidence_layouts import sgx_quote, snp_report, tdx_quote

_EVENTS = frozenset({"open", "os.mkdir", "os.rmdir", "os.chmod"})
_active: list[FakeDevice] = []
_state = threading.local()
_install_lock = threading.Lock()
_installed = False


def _dispatch(event: str, args: tuple[Any, ...]) -> None:
    if not _active or event not in _EVENTS or getattr(_state, "busy", False):
        return
    raw = args[0]
    if isinstance(raw, int):
        return
    try:
        path = os.path.abspath(os.fsdecode(raw))
    except TypeError:
        return
    for device in list(_active):
        if path == device.prefix[:-1] or path.startswith(device.prefix):
            _state.busy = True  # the fake's own file operations must not re-enter it
            try:
                device.on_event(event, Path(path), args)
            finally:
                _state.busy = False
            return


def _install() -> None:
    global _installed
    with _install_lock:
        if not _installed:
            sys.addaudithook(_dispatch)
            _installed = True


def _writes(args: tuple[Any, ...]) -> bool:
    flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
    return (flags & os.O_ACCMODE) in (os.O_WRONLY, os.O_RDWR)


class FakeDevice(ABC):
    """A device rooted at ``root``; active (reacting to file-system calls) inside ``with``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.prefix = str(self.root) + os.sep

    @abstractmethod
    def on_event(self, event: str, path: Path, args: tuple[Any, ...]) -> None:
        """React to a file-system call on ``path`` under this device's root."""

    def __enter__(self) -> Self:
        _install()
        _active.append(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _active.remove(self)


class FileEventRecorder(FakeDevice):
    """Records (event, path, mode) of every audited call under ``root``; changes nothing."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.events: list[tuple[str, Path, Any]] = []

    def on_event(self, event: str, path: Path, args: tuple[Any, ...]) -> None:
        self.events.append((event, path, args[1] if len(args) > 1 else None))


@dataclass
class _Entry:
    generation: int = 0
    populated: bool = False


@dataclass
class TsmLog:
    """What the fake kernel saw."""

    created: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    inblobs: list[bytes] = field(default_factory=list)


class FakeTsmKernel(FakeDevice):
    """The configfs-tsm report ABI on a plain directory ``root`` (the ``.../tsm/report`` folder).

    ``provider`` is ``tdx_guest`` (outblob: a TDX quote v4) or ``sev_guest``
    (outblob: a SEV-SNP report; like the kernel, inblob must be 64 bytes).
    ``races``: how many more report reads see another writer bump
    ``generation`` behind our back. ``mkdir_errno``: make entry creation fail.
    """

    ATTRIBUTES = ("inblob", "outblob", "auxblob", "generation", "provider", "privlevel", "privlevel_floor")

    def __init__(
        self,
        root: Path,
        provider: str = "tdx_guest",
        measurement: bytes | None = None,
        *,
        races: int = 0,
        mkdir_errno: int | None = None,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root)
        self.provider = provider
        default = b"\x7d" * 48
        self.measurement = measurement if measurement is not None else default
        self.races = races
        self.mkdir_errno = mkdir_errno
        self.log = TsmLog()
        self._entries: dict[str, _Entry] = {}

    def evidence(self, inblob: bytes) -> bytes:
        """What the TSM driver returns for ``inblob``."""
        report_data = inblob.ljust(64, b"\0")
        if self.provider == "sev_guest":
            return snp_report(report_data, self.measurement)
        return tdx_quote(report_data, self.measurement, (b"\x01" * 48, b"\x02" * 48, b"\x03" * 48, bytes(48)))

    def on_event(self, event: str, path: Path, args: tuple[Any, ...]) -> None:
        if event == "os.mkdir" and path.parent == self.root:
            if self.mkdir_errno is not None:
                raise OSError(self.mkdir_errno, os.strerror(self.mkdir_errno), str(path))
            self.log.created.append(path.name)
            self._entries[path.name] = _Entry()
        elif event == "os.rmdir" and path.parent == self.root:
            # Attributes vanish with the entry, as in configfs.
            for child in path.iterdir():
                child.unlink()
            self.log.removed.append(path.name)
            self._entries.pop(path.name, None)
        elif event == "open" and path.parent.parent == self.root and path.name in self.ATTRIBUTES:
            self._attribute(path.parent, path.name, _writes(args))

    def _attribute(self, entry_dir: Path, name: str, writing: bool) -> None:
        entry = self._entries.setdefault(entry_dir.name, _Entry())
        if not entry.populated:
            for attribute in self.ATTRIBUTES:
                (entry_dir / attribute).write_bytes(b"")
            (entry_dir / "provider").write_text(self.provider + "\n")
            (entry_dir / "privlevel_floor").write_text("0\n")
            entry.populated = True
            self._set_generation(entry_dir, entry, 0)
        if name == "inblob" and writing:
            self._set_generation(entry_dir, entry, entry.generation + 1)
        elif name == "outblob" and not writing:
            inblob = (entry_dir / "inblob").read_bytes()
            self.log.inblobs.append(inblob)
            if len(inblob) > 64 or (self.provider == "sev_guest" and len(inblob) != 64):
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), str(entry_dir / "outblob"))
            (entry_dir / "outblob").write_bytes(self.evidence(inblob))
            if self.races > 0:
                self.races -= 1
                self._set_generation(entry_dir, entry, entry.generation + 1)

    @staticmethod
    def _set_generation(entry_dir: Path, entry: _Entry, value: int) -> None:
        entry.generation = value
        (entry_dir / "generation").write_text(f"{value}\n")

    def entries(self) -> list[str]:
        """Report entries currently present under the root."""
        return sorted(p.name for p in self.root.iterdir())


class FakeGramine(FakeDevice):
    """Gramine's ``/dev/attestation`` on a plain directory ``root``.

    Reading ``quote`` yields an SGX quote over the last 64 bytes written to
    ``user_report_data``; ``keys/_sgx_mrenclave`` holds ``sealing_key``.
    """

    def __init__(
        self,
        root: Path,
        mrenclave: bytes = b"\xe1" * 32,
        sealing_key: bytes = b"\x5e" * 16,
        *,
        attestation_type: str = "dcap",
        target_info_mrenclave: bytes | None = None,
    ) -> None:
        (root / "keys").mkdir(parents=True, exist_ok=True)
        super().__init__(root)
        self.mrenclave = mrenclave
        self.quotes = 0
        (root / "attestation_type").write_text(attestation_type + "\n")
        target = target_info_mrenclave if target_info_mrenclave is not None else mrenclave
        (root / "my_target_info").write_bytes(target + bytes(512 - 32))
        (root / "user_report_data").write_bytes(bytes(64))
        (root / "quote").write_bytes(b"")
        (root / "keys" / "_sgx_mrenclave").write_bytes(sealing_key)

    def on_event(self, event: str, path: Path, args: tuple[Any, ...]) -> None:
        if event == "open" and path == self.root / "quote" and not _writes(args):
            report_data = (self.root / "user_report_data").read_bytes()[:64]
            (self.root / "quote").write_bytes(sgx_quote(report_data, self.mrenclave))
            self.quotes += 1
