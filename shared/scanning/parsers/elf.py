"""A small ELF reader: section and program headers, bounds-checked, from bytes.

Only what the Go and Rust binary parsers need: find a section by name, read
its bytes, and translate a virtual address into file bytes (through the
loadable segments, or the sections when a file has no program headers).
Every offset and count is checked against the data, so a truncated or
hostile file raises :class:`ElfError` (or yields ``None`` from a lookup)
and never reads out of range or allocates without bound.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ELF_MAGIC = b"\x7fELF"

SHT_NOBITS = 8
PT_LOAD = 1
PF_W = 2

# Tables larger than this are not believed (real binaries have tens of sections).
_MAX_ENTRIES = 1 << 16
_MAX_NAME = 256


class ElfError(ValueError):
    """The data starts like ELF but its headers are malformed or truncated."""


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


@dataclass(frozen=True, slots=True)
class Elf:
    data: bytes
    bits: int  # 32 or 64
    little_endian: bool
    sections: tuple[Section, ...]
    segments: tuple[Segment, ...]

    @property
    def ptr_size(self) -> int:
        return self.bits // 8

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def section_data(self, section: Section) -> bytes | None:
        """A section's bytes, or None when it occupies no file space or lies past the end."""
        if section.type == SHT_NOBITS:
            return None
        end = section.offset + section.size
        if section.offset < 0 or end > len(self.data):
            return None
        return self.data[section.offset : end]

    def read_at(self, vaddr: int, size: int) -> bytes | None:
        """``size`` bytes at virtual address ``vaddr``, or None if no file bytes back the range."""
        if size < 0 or vaddr < 0:
            return None
        for seg in self.segments:
            if seg.type != PT_LOAD:
                continue
            if seg.vaddr <= vaddr and vaddr + size <= seg.vaddr + seg.filesz:
                off = seg.offset + (vaddr - seg.vaddr)
                if off + size <= len(self.data):
                    return self.data[off : off + size]
        for sec in self.sections:
            if sec.type == SHT_NOBITS or sec.addr == 0:
                continue
            if sec.addr <= vaddr and vaddr + size <= sec.addr + sec.size:
                off = sec.offset + (vaddr - sec.addr)
                if off + size <= len(self.data):
                    return self.data[off : off + size]
        return None


def is_elf(data: bytes) -> bool:
    return data[:4] == ELF_MAGIC


def parse_elf(data: bytes) -> Elf:
    """Read the headers of an ELF file. Raises :class:`ElfError` when they are malformed."""
    if len(data) < 16 or not is_elf(data):
        raise ElfError("not an ELF file")
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2):
        raise ElfError(f"unknown ELF class {ei_class}")
    if ei_data not in (1, 2):
        raise ElfError(f"unknown ELF data encoding {ei_data}")
    bits = 32 if ei_class == 1 else 64
    end = "<" if ei_data == 1 else ">"
    if bits == 64:
        hdr_fmt = end + "HHIQQQIHHHHHH"
    else:
        hdr_fmt = end + "HHIIIIIHHHHHH"
    hdr_size = 16 + struct.calcsize(hdr_fmt)
    if len(data) < hdr_size:
        raise ElfError("truncated ELF header")
    (
        _e_type,
        _e_machine,
        _e_version,
        _e_entry,
        e_phoff,
        e_shoff,
        _e_flags,
        _e_ehsize,
        e_phentsize,
        e_phnum,
        e_shentsize,
        e_shnum,
        e_shstrndx,
    ) = struct.unpack_from(hdr_fmt, data, 16)

    segments = _segments(data, bits, end, e_phoff, e_phentsize, e_phnum)
    sections = _sections(data, bits, end, e_shoff, e_shentsize, e_shnum, e_shstrndx)
    return Elf(data=data, bits=bits, little_endian=ei_data == 1, sections=sections, segments=segments)


def _table(data: bytes, off: int, entsize: int, num: int, need: int, what: str) -> None:
    if num == 0:
        return
    if num > _MAX_ENTRIES:
        raise ElfError(f"{what}: {num} entries is not believable")
    if entsize < need:
        raise ElfError(f"{what}: entry size {entsize} is below {need}")
    if off <= 0 or off + entsize * num > len(data):
        raise ElfError(f"{what} lies past the end of the file")


def _segments(data: bytes, bits: int, end: str, off: int, entsize: int, num: int) -> tuple[Segment, ...]:
    if bits == 64:
        fmt = end + "IIQQQQQQ"
    else:
        fmt = end + "IIIIIIII"
    need = struct.calcsize(fmt)
    _table(data, off, entsize, num, need, "program header table")
    out = []
    for i in range(num):
        vals = struct.unpack_from(fmt, data, off + i * entsize)
        if bits == 64:
            p_type, p_flags, p_offset, p_vaddr, _p_paddr, p_filesz, p_memsz, _align = vals
        else:
            p_type, p_offset, p_vaddr, _p_paddr, p_filesz, p_memsz, p_flags, _align = vals
        out.append(Segment(p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz))
    return tuple(out)


def _sections(data: bytes, bits: int, end: str, off: int, entsize: int, num: int, strndx: int) -> tuple[Section, ...]:
    if bits == 64:
        fmt = end + "IIQQQQIIQQ"
    else:
        fmt = end + "IIIIIIIIII"
    need = struct.calcsize(fmt)
    if off == 0:
        return ()
    if num == 0 or strndx == 0xFFFF:
        # Extended numbering: the real count / string-table index live in section 0.
        if entsize < need or off + need > len(data):
            raise ElfError("section header table lies past the end of the file")
        first = struct.unpack_from(fmt, data, off)
        if num == 0:
            num = first[5]  # sh_size
        if strndx == 0xFFFF:
            strndx = first[6]  # sh_link
    _table(data, off, entsize, num, need, "section header table")
    raw = []
    for i in range(num):
        name_off, sh_type, sh_flags, sh_addr, sh_offset, sh_size, *_ = struct.unpack_from(fmt, data, off + i * entsize)
        raw.append((name_off, sh_type, sh_flags, sh_addr, sh_offset, sh_size))
    strtab = b""
    if 0 < strndx < num:
        _, st_type, _, _, st_off, st_size = raw[strndx]
        if st_type != SHT_NOBITS and st_off + st_size <= len(data):
            strtab = data[st_off : st_off + st_size]
    out = []
    for name_off, sh_type, sh_flags, sh_addr, sh_offset, sh_size in raw:
        out.append(Section(_name(strtab, name_off), sh_type, sh_flags, sh_addr, sh_offset, sh_size))
    return tuple(out)


def _name(strtab: bytes, off: int) -> str:
    if off >= len(strtab):
        return ""
    stop = strtab.find(b"\x00", off, off + _MAX_NAME)
    if stop < 0:
        stop = min(len(strtab), off + _MAX_NAME)
    return strtab[off:stop].decode("utf-8", "replace")
