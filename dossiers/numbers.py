"""Application, publication, priority and PCT numbers: kept verbatim, looked up by a key.

Offices write numbers in many spellings (``PI 2022/001234``, ``PI2022001234``,
``pi 2022-1234``). The verbatim text is stored as written; :func:`normalise` derives the
**key** used for look-ups and for linking families (a priority claim and the claimed
application meet on equal keys).

Key scheme
----------
* A recognised format gives ``"<PREFIX>:<CANONICAL>"``: ``PREFIX`` is the office code
  (``SG``, ``MY``, ``ID``, ``VN``, ``PH``, ``TH``, ``BN``, ``KH``, ``LA``, ``US``, ``EP``,
  ``JP``, ``CN``, ``KR``) or, for office-independent series, ``PCT`` (international
  applications) and ``WO`` (international publications). ``CANONICAL`` is the number in
  capitals and digits only, separators dropped, fixed-width serials zero-filled, two-digit
  years widened (78-99 -> 19xx, else 20xx), EP/CN check digits and publication kind codes
  (A, A1, B2, U ...) dropped. Examples: ``SG:10202301234X``, ``MY:PI2023001234``,
  ``VN:1202301234``, ``PCT:SG2023050123``, ``WO:2003012345``, ``EP:22123456``.
* Office-qualified keys never collide across offices: ``MY`` and ``TH`` numbers with the
  same digits give different keys.
* An unrecognised number of a known office: ``f"{office}:{fold(number)}"``; with no
  office either: ``fold(number)`` (capitals and digits only).
* Keys are at most 64 characters of ``[0-9A-Z:]``; text without letters or digits raises
  :class:`ValueError`.

Spelling tolerance: case, white space, any punctuation (``/ - . , :``), optional
separators, a leading office code (``SG 10202301234X``, ``JP2022-123456``, ``特願`` = JP),
full-width forms (NFKC), other scripts' digits (Thai ``๒๓``) and, where separators delimit
a fixed-width serial, missing leading zeros (``1-2023-1234`` = ``1-2023-01234`` for VN).

Publications: a publication key only has to equal the key of the same publication written
differently; look-ups search application, publication, priority and PCT keys together.
Singapore (since 2014) publishes under the application number plus a kind code, so
``SG 10202301234X A`` keys as ``SG:10202301234X``: only an ``A``/``B`` kind *after* the
check letter (P-Y) is dropped, never the check letter. JP and KR use the same shape for
application and publication series, so such keys may meet both; the caller tells them
apart by the column searched.

Without an office (:func:`normalise` with ``None``), the format is detected from the text
when exactly one interpretation fits: a self-identifying shape (``PCT/...``, ``WO ...``,
``PI...``/``UI...`` = MY, ``P00...``/``S00...`` = ID, ``1-YYYY-NNNNN`` = VN,
``1/YYYY/NNNNNN`` = PH, ``NNNNNNNN.N`` = EP, ``NN/NNN,NNN`` = US, ``10-YYYY-NNNNNNN`` = KR,
``YYYY-NNNNNN`` = JP, ``YYYYTNNNNNNN.N`` = CN, ``1[01]YYYYNNNNNX`` = SG) or a leading office
code; otherwise the plain folded form. :func:`candidates` lists every key a search-box
query could mean.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

MAX_KEY = 64
_FOLD = re.compile(r"[^0-9A-Z]")
_SEPARATORS = re.compile(r"[^0-9A-Z]+")
_SCRIPT_PREFIXES = (("特願", "JP"), ("特開", "JP"), ("特表", "JP"))  # JP application / publications
_LONGEST = 48  # no supported format is longer (as a skeleton); longer text is not parsed

# Regular-expression pieces. They run on the *skeleton* of the text: capitals and digits,
# every run of anything else turned into one "-", so "-?" stands for an optional separator.
_Y = r"(?P<y>(?:19|20)\d\d)"  # four-digit year
_KIND = r"(?:-?[A-Z]\d?)?"  # publication kind code, dropped


def _ser(width: int) -> str:
    """A fixed-width serial: exactly ``width`` digits, or fewer after a separator."""
    return rf"(?P<s>-\d{{1,{width}}}|\d{{{width}}})"


_LENIENT = rf"(?P<t>[A-Z])-?{_Y}-?(?P<s>\d{{1,6}})"  # BN/N/2023/0012, KH/P/..., LA/P/...

# (office, body, serial width, free-text shape). The body may follow the office code
# (optional when the office is known). The key joins the named groups in order: "s..."
# groups are serials zero-filled to the width, "yy" two-digit years widened, the rest kept.
# Free-text shape: True = the body identifies the office by itself; a pattern = this
# stricter shape does; None = only with a leading office code.
_SPECS: list[tuple[str, str, int, bool | str | None]] = [
    ("PCT", rf"(?P<ro>[A-Z]{{2}})-?(?:{_Y}{_ser(6)}|(?P<yy>\d\d)(?P<s2>-\d{{1,6}}|\d{{5}}))", 6, None),
    ("WO", rf"(?:{_Y}(?P<s>-\d{{1,6}}|\d{{5,6}})|(?P<yy>\d\d)(?P<s2>-\d{{1,6}}|\d{{5,6}})){_KIND}", 6, None),
    ("MY", rf"(?P<t>PI|UI)-?{_Y}{_ser(6)}", 6, True),
    ("ID", rf"(?P<t>[PSW])-?(?P<c>\d\d)-?{_Y}{_ser(5)}", 5, True),
    ("SG", rf"(?P<t>1[01])-?{_Y}{_ser(5)}-?(?P<c>[P-Y])(?:-?[AB]\d?)?", 5,
     r"1[01](?:19|20)\d{7}[P-Y](?:-?[AB]\d?)?"),
    ("SG", rf"(?:{_Y}|(?P<yy>\d\d))(?P<s>\d{{5}})-?(?P<c>\d)", 5, r"(?:(?:19|20)\d\d|\d\d)\d{5}-\d"),
    ("SG", r"(?P<n>\d{6})-?[AB]\d?", 0, None),  # pre-2014 publication / grant numbers
    ("VN", rf"(?P<t>[1-4])-?{_Y}{_ser(5)}", 5, r"[12]-(?:19|20)\d\d-\d{5}"),
    ("PH", rf"(?P<t>[1-3])-?{_Y}{_ser(6)}", 6, r"[12]-(?:19|20)\d\d-\d{6}"),
    ("TH", rf"(?P<a>\d\d)-?(?P<t>\d\d){_ser(6)}", 6, None),
    ("BN", _LENIENT, 4, None),
    ("KH", _LENIENT, 5, None),
    ("LA", _LENIENT, 6, None),
    ("US", r"(?P<n>\d\d-?\d{3}-?\d{3})", 0, r"\d\d-\d{3}-\d{3}"),  # application 18/123,456
    ("US", rf"{_Y}-?(?P<n>\d{{7}}){_KIND}", 0, None),  # publication US 2024/0012345 A1
    ("EP", r"(?P<n>\d\d-?\d{3}-?\d{3})(?:-?\d)?", 0, r"\d{8}-\d"),  # application 22123456.7
    ("EP", rf"(?P<n>\d(?:-?\d{{3}}){{2}}){_KIND}", 0, None),  # publication EP 3456789 A1
    ("JP", rf"{_Y}{_ser(6)}{_KIND}", 6, rf"(?:19|20)\d\d-\d{{6}}{_KIND}"),
    ("CN", r"(?:ZL-?)?(?P<n>(?:19|20)\d\d-?[1-9]-?\d{7})(?:-?[\dX])?", 0,
     r"ZL-?\d{12}(?:-?[\dX])?|(?:19|20)\d\d[1-9]\d{7}-[\dX]"),
    ("CN", rf"(?P<n>\d{{9}}){_KIND}", 0, None),  # publication CN 116123456 A
    ("KR", rf"(?P<t>[1-4]0)-?{_Y}{_ser(7)}{_KIND}", 7, rf"[1-4]0-(?:19|20)\d\d-\d{{7}}{_KIND}"),
]
_UNIVERSAL = frozenset({"PCT", "WO"})  # recognised whichever office wrote the number


class _Format(NamedTuple):
    office: str
    known: re.Pattern[str]  # office code optional: used when the office is known
    prefixed: re.Pattern[str]  # office code required
    free: re.Pattern[str] | None  # shape that identifies the office without a code
    width: int

    def key(self, m: re.Match[str]) -> str:
        parts = []
        for name, index in sorted(m.re.groupindex.items(), key=lambda item: item[1]):
            value = m.group(index)
            if value is None:
                continue
            if name.startswith("s"):
                value = re.sub(r"\D", "", value).lstrip("0").zfill(self.width)
            elif name == "yy":
                value = ("19" if value >= "78" else "20") + value
            parts.append(value.replace("-", ""))
        return f"{self.office}:{''.join(parts)}"


def _compile(office: str, body: str, width: int, free: bool | str | None) -> _Format:
    code = re.escape(office)
    shape = re.compile(body if free is True else free) if free else None
    return _Format(office, re.compile(rf"(?:{code}-?)?(?:{body})"), re.compile(rf"{code}-?(?:{body})"),
                   shape, width)


_FORMATS = [_compile(*spec) for spec in _SPECS]
_OFFICES = frozenset(f.office for f in _FORMATS if len(f.office) == 2)


def _plain(text: str) -> str:
    """NFKC (full-width forms to ASCII), other scripts' decimal digits (Thai ...) to 0-9."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() and not c.isascii() else c for c in text)


def fold(number: str) -> str:
    """Capitals and digits only: the office-independent, format-blind form of a number."""
    return _FOLD.sub("", _plain(number).upper())


def _skeleton(number: str) -> str:
    text = _plain(number)
    for script, code in _SCRIPT_PREFIXES:
        text = text.replace(script, f" {code} ")
    return _SEPARATORS.sub("-", text.upper()).strip("-")


def _folded(number: str) -> str:
    key = fold(number)
    if not key:
        raise ValueError(f"{number!r} holds no letters or digits")
    return key


def _match(fmt: _Format, pattern: re.Pattern[str] | None, skel: str) -> str | None:
    m = pattern.fullmatch(skel) if pattern is not None and len(skel) <= _LONGEST else None
    return fmt.key(m) if m else None


def _detected(skel: str) -> list[str]:
    """Keys of the formats the text identifies by itself (shape or leading office code)."""
    keys = []
    for fmt in _FORMATS:
        key = _match(fmt, fmt.prefixed, skel)
        if key is None and fmt.free is not None and fmt.free.fullmatch(skel):
            key = _match(fmt, fmt.known, skel)
        if key and key not in keys:
            keys.append(key)
    return keys


def normalise(office: str | None, number: str) -> str:
    """The look-up key of ``number`` as written by ``office`` (``None`` when unknown).

    With an office: PCT/WO numbers get their office-independent key; otherwise the
    office's own formats are tried, then ``f"{office}:{fold(number)}"``. Without one: the
    single detected interpretation, else ``fold(number)``. See the module docstring.
    """
    folded = _folded(number)
    skel = _skeleton(number)
    code = fold(office) if office else ""
    if not code:
        keys = _detected(skel)
        return (keys[0] if len(keys) == 1 else folded)[:MAX_KEY]
    for fmt in _FORMATS:
        if fmt.office == code:
            key = _match(fmt, fmt.known, skel)
        elif fmt.office in _UNIVERSAL:
            key = _match(fmt, fmt.prefixed, skel)
        else:
            continue
        if key:
            return key[:MAX_KEY]
    return f"{code}:{folded}"[:MAX_KEY]


def candidates(text: str) -> list[str]:
    """Every key a free-text query (from a search box, office unknown) could mean.

    In order, without duplicates:

    1. ``normalise(None, text)``: the detected key, or the folded form if ambiguous;
    2. for every format the text fits (office code optional, PCT and WO included), that
       format's key: ``"2301001234"`` gives ``TH:2301001234``, ``"1-2023-1234"`` gives
       both ``VN:1202301234`` and ``PH:12023001234``;
    3. when the text starts with a supported office code (``"US 11,234,567 B2"``), the
       unknown-format keys that office would have stored, with and without the code
       written in the number (``US:US11234567B2``, ``US:11234567B2``);
    4. the plain folded form ``fold(text)``.

    The search endpoint looks all of them up in the application, publication, priority
    and PCT key columns. Raises ValueError for text without letters or digits.
    """
    folded = _folded(text)
    skel = _skeleton(text)
    keys = [normalise(None, text)]
    keys += [key for fmt in _FORMATS if (key := _match(fmt, fmt.known, skel))]
    flat = skel.replace("-", "")
    if flat[:2] in _OFFICES and len(flat) > 2:
        keys += [f"{flat[:2]}:{flat}", f"{flat[:2]}:{flat[2:]}"]
    keys.append(folded)
    return list(dict.fromkeys(key[:MAX_KEY] for key in keys))
