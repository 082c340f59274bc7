#!/usr/bin/env python3
"""Renders MMA's groove library over chord progressions into multi-track General MIDI files,
then counts what it wrote. Run by scripts/build-groove-collection.sh, whose header explains
the choices; python3's standard library and the `mma` command are all it needs.

    groove-collection.py OUT [--lib DIR] [--libraries stdlib,casio,...] [--limit N]
    groove-collection.py OUT --stats-only
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path

# ------------------------------------------------------------------------------------------
# Progressions. Written in C major (or A minor), one list item a bar; a bar holding two chords
# splits the bar in half, whatever the groove's metre. Every song is transposed by MMA
# (Transpose) into one of KEYS. Generic progressions belong to no one song; the two charts
# taken from MMA's own examples say where they come from.
PROGRESSIONS = {
    # The "four-chord" pop loop (I-V-vi-IV), twice.
    "pop-I-V-vi-IV": ["C", "G", "Am", "F"] * 2,
    # The 1950s doo-wop / "ice cream" changes (I-vi-IV-V), twice.
    "doowop-I-vi-IV-V": ["C", "Am", "F", "G"] * 2,
    # Mixolydian rock (I-bVII-IV-I), ending on V the second time.
    "rock-I-bVII-IV-I": ["C", "Bb", "F", "C", "C", "Bb", "F", "G"],
    # Natural-minor loop (i-bVI-bIII-bVII), twice.
    "minor-i-bVI-bIII-bVII": ["Am", "F", "C", "G"] * 2,
    # Andalusian cadence (i-bVII-bVI-V), twice.
    "andalusian-i-bVII-bVI-V": ["Am", "G", "F", "E7"] * 2,
    # The 12-bar blues with a quick change to IV and a V turnaround.
    "blues-12-bar": ["C7", "F7", "C7", "C7", "F7", "F7", "C7", "C7", "G7", "F7", "C7", "G7"],
    # The minor 12-bar blues (i-iv-i, bVI7-V7 in bars 9-10).
    "minor-blues-12-bar": ["Am7", "Dm7", "Am7", "Am7", "Dm7", "Dm7", "Am7", "Am7",
                           "F7", "E7", "Am7", "E7"],
    # ii-V-I in major, then a I-VI-ii-V turnaround.
    "jazz-ii-V-I": ["Dm7", "G7", "CM7", "CM7", "Em7 A7", "Dm7 G7", "CM7 A7", "Dm7 G7"],
    # ii-V-i in minor (half-diminished ii, V7), then iv-bVII-bIII-V.
    "jazz-minor-ii-V-i": ["Bm7b5", "E7", "Am7", "Am7", "Dm7", "G7", "CM7", "Bm7b5 E7"],
    # I-vi-ii-V "rhythm" turnaround with a move to IV (I7-IV-iv), 8 bars.
    "rhythm-I-vi-ii-V": ["C6 Am7", "Dm7 G7", "C6 Am7", "Dm7 G7", "C7", "F6 Fm6", "Em7 A7",
                         "Dm7 G7"],
    # Hymn and folk changes: I-IV-I-V7, I-IV-I V7-I.
    "folk-I-IV-V": ["C", "F", "C", "G7", "C", "F", "C G7", "C"],
    # Minor folk / tango changes: i-iv-V7-i twice, the second time through iv-V7.
    "minor-i-iv-V": ["Am", "Dm", "E7", "Am", "Am", "Dm", "Dm E7", "Am"],
    # MMA's tutorial chart (examples/tutorial/fella1.mma, 16 bars), moved from F to C.
    "mma-tutorial-16-bar": ["C", "C", "G7", "C", "C", "C", "G7", "C",
                            "Dm", "C", "G7", "C", "Dm", "C", "G7", "C"],
    # The 16-bar bossa nova MMA wrote to demonstrate its Aria track (examples/aria/bossa.mma),
    # as written (in C, opening in Bb).
    "mma-aria-bossa-16-bar": ["Cm7 F7", "Cm7 F7", "Bb6 BbM7", "Cm7 F7", "Dm7 G7", "Dm7 G7",
                              "C6 CM7", "Dm7 G7", "G", "Gm", "Gdim", "F", "G", "G7",
                              "Cm7 F7", "Cm7 C"],
}
MINOR = {"minor-i-bVI-bIII-bVII", "andalusian-i-bVII-bVI-V", "minor-blues-12-bar",
         "jazz-minor-ii-V-i", "minor-i-iv-V"}
TONIC = {name: "Am" if name in MINOR else "C" for name in PROGRESSIONS}

NOTE_NAMES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
# Transpositions from C, in semitones: C G D A E F Bb Eb (the keys of most popular music and
# of most band and lead-sheet arrangements), kept within -5..+6 so that bass and chord
# ranges move by at most half an octave.
KEYS = [("C", 0), ("G", -5), ("D", 2), ("A", -3), ("E", 4), ("F", 5), ("Bb", -2), ("Eb", 3)]

# ------------------------------------------------------------------------------------------
# Style families: the first rule whose pattern matches "library/stem" (the library file's
# name without .mma) gives the output folder and the tempo in MMA's beats per minute. MMA
# counts the beats a groove is written in, so a 2/4 style written in 4 (polka, Sousa march,
# samba, ska: their notes say to double the tempo) gets twice its felt tempo, a 6/8 style
# written in 6 counts eighth notes (three a dotted quarter), a 12/8 style written in 4 counts
# dotted quarters. A tempo the file's own notes give ("Good tempos are 120 to 150 bpm": the
# middle, 135) or its own Tempo line comes before these. The rest are the usual tempos of
# each dance or style.
STYLES = [
    # (pattern, family, tempo)
    (r"metronome|/none$|/count$", None, 0),  # count-ins and the empty groove: not music
    (r"vienesewaltz|fastwaltz|fastjazzwaltz", "waltz", 180),
    (r"waltz", "waltz", 132),
    (r"68march", "march-polka", 116),        # 6/8 in 2: dotted quarter = 116
    (r"stdlib/march$", "march-polka", 240),  # 2/4 in 4: its notes ask for double
    (r"march", "march-polka", 116),
    (r"stdlib/polka$", "march-polka", 240),  # 2/4 in 4: its notes ask for double
    (r"polka", "march-polka", 120),
    (r"stdlib/samba$", "latin", 200),        # 2/2 in 4: its notes ask for double
    (r"samba|quando", "latin", 100),
    (r"bossa", "latin", 130),
    (r"salsa|mambo", "latin", 180),
    (r"merengue", "latin", 150),
    (r"slowbolero", "latin", 84),
    (r"bolero", "latin", 100),
    (r"chacha|tango", "latin", 120),
    (r"afro-cuban", "latin", 150),           # 6/8 in 3: dotted quarter = 100
    (r"cubanguitar", "latin", 96),
    (r"rhumba|beguine|calypso|/son$|afro|latin|lfusion", "latin", 116),
    (r"stdlib/ska$", "reggae-ska", 200),     # its notes ask for double tempo
    (r"reggae|ska", "reggae-ska", 150),
    (r"bluegrass", "country-folk", 170),
    (r"slowcountry|kwestballad", "country-folk", 76),
    (r"westernswing|countryswing", "country-folk", 150),
    (r"countryblues", "blues", 110),
    (r"country|cntr|western|hillcountry|zydeco|2beatp", "country-folk", 124),
    (r"blues68|68blus", "blues", 180),       # 6/8 in 6: dotted quarter = 60
    (r"blues128", "blues", 60),              # 12/8 in 4: dotted quarter = 60
    (r"fastblues", "blues", 160),
    (r"slowblues", "blues", 64),
    (r"boggie|boogie", "blues", 150),
    (r"blues|blus", "blues", 100),
    (r"68swing", "jazz-swing", 180),         # 6/8 in 6: dotted quarter = 60
    (r"casio/fastbigband", "jazz-swing", 120),  # its notes: "try halving your tempo"
    (r"fastswing|gypsyjazz|charleston|dixie|quickstep|bebop|ragtime", "jazz-swing", 200),
    (r"mellowjazz|nitejazz|slowjazz|jazzguitar|slowswing|slowbigband|middlebigband",
     "jazz-swing", 76),
    (r"jazz-54", "jazz-swing", 168),
    (r"slowbroadway|showtune|easyswing|jazzrock|jazzrhumba|folkyjazz|evansish|descending",
     "jazz-swing", 116),
    (r"stdlib/broadway$", "jazz-swing", 280),  # 2/4 in 4 (its notes: 280)
    (r"softshoe|foxtrot", "jazz-swing", 116),
    (r"jazz|swing|bigband|basie|desert", "jazz-swing", 144),
    (r"slowspiritual|folkballad|hymn", "country-folk", 72),
    (r"spiritual|bluefolk|folk", "country-folk", 110),
    (r"ballad128", "ballad", 56),            # 12/8 in 4: dotted quarter = 56
    (r"stdlib/ballad68", "ballad", 112),     # 6/8 in 4: its notes ask for twice the tempo
    (r"68ballad|arpeggio68", "ballad", 150),  # 6/8 in 6: dotted quarter = 50
    (r"ballad|bald|serenade|arpeggio|lullaby", "ballad", 72),
    (r"rock-128|/slowrock", "ballad", 66),   # 12/8 doo-wop in 4: dotted quarter = 66
    (r"disco|dsoul|boneym|motown", "funk-soul-rnb", 120),
    (r"soul|funk", "funk-soul-rnb", 104),
    (r"r\+b|rnb|/rb$|mellowrb|modernrb", "funk-soul-rnb", 96),
    (r"dnb", "electronic", 172),
    (r"trip|hip", "electronic", 90),
    (r"techno|trance|house|rave|dance|ambient|electric", "electronic", 128),
    (r"popshuffle|happyshuffle", "pop", 124),
    (r"pop|bubble|softrock", "pop", 112),
    (r"punk", "rock", 180),
    (r"metal|mtl|/thr$|hrk|digitalrock", "rock", 136),
    (r"twist|twi$|jive", "rock", 150),
    (r"50s|60s|basicrock|strut", "rock", 132),
    (r"slow16beat", "rock", 84),
    (r"rock|beat|shuffle|fus|highfive", "rock", 120),
    (r".", "other", 110),
]

# Which progressions each family plays, taken in turn.
FAMILY_PROGRESSIONS = {
    "rock": ["pop-I-V-vi-IV", "rock-I-bVII-IV-I", "blues-12-bar", "minor-i-bVI-bIII-bVII",
             "doowop-I-vi-IV-V"],
    "pop": ["pop-I-V-vi-IV", "doowop-I-vi-IV-V", "minor-i-bVI-bIII-bVII", "rock-I-bVII-IV-I",
            "folk-I-IV-V"],
    "ballad": ["pop-I-V-vi-IV", "doowop-I-vi-IV-V", "minor-i-bVI-bIII-bVII", "jazz-ii-V-I",
               "mma-tutorial-16-bar"],
    "jazz-swing": ["jazz-ii-V-I", "rhythm-I-vi-ii-V", "jazz-minor-ii-V-i", "blues-12-bar",
                   "mma-aria-bossa-16-bar"],
    "blues": ["blues-12-bar", "minor-blues-12-bar"],
    "latin": ["mma-aria-bossa-16-bar", "jazz-minor-ii-V-i", "andalusian-i-bVII-bVI-V",
              "minor-i-iv-V", "jazz-ii-V-I", "pop-I-V-vi-IV"],
    "country-folk": ["folk-I-IV-V", "mma-tutorial-16-bar", "pop-I-V-vi-IV", "blues-12-bar",
                     "doowop-I-vi-IV-V"],
    "waltz": ["folk-I-IV-V", "mma-tutorial-16-bar", "jazz-ii-V-I", "minor-i-iv-V",
              "doowop-I-vi-IV-V"],
    "march-polka": ["folk-I-IV-V", "mma-tutorial-16-bar", "rhythm-I-vi-ii-V"],
    "funk-soul-rnb": ["blues-12-bar", "minor-blues-12-bar", "minor-i-bVI-bIII-bVII",
                      "doowop-I-vi-IV-V", "pop-I-V-vi-IV"],
    "electronic": ["minor-i-bVI-bIII-bVII", "pop-I-V-vi-IV", "andalusian-i-bVII-bVI-V"],
    "reggae-ska": ["pop-I-V-vi-IV", "folk-I-IV-V", "doowop-I-vi-IV-V",
                   "minor-i-bVI-bIII-bVII"],
    "other": ["minor-i-bVI-bIII-bVII", "andalusian-i-bVII-bVI-V", "jazz-minor-ii-V-i"],
}

BODY_BARS = 32      # the progression repeats until the body has at least this many bars
MAX_INTRO_BARS = 8  # an intro plays for its own length (its sequence size), at most this
MAX_FILL_BARS = 2
MAX_END_BARS = 4

# A tempo stated in a library file's notes: "a tempo of 280", "tempos around 200",
# "120 to 150 bpm", "tempo 100 - 125", "175-200 range", "around 150 bpm", "56bpm".
DOC_TEMPO = re.compile(
    r"(?:tempos?\s+(?:of|around|range)?\s*|around\s+|range\s+from\s+|tempos?\s+in\s+the\s+)"
    r"(\d{2,3})(?:\s*(?:to|-|=)\s*(\d{2,3}))?"
    r"|(\d{2,3})\s*(?:to|-)\s*(\d{2,3})\s*(?:bpm|range)"
    r"|(\d{2,3})\s*bpm", re.I)

INTRO = re.compile(r"intro", re.I)
ENDING = re.compile(r"end(ing)?[0-9a-z]{0,3}$|^ending", re.I)
FILL = re.compile(r"fill|break", re.I)
COUNT_IN = re.compile(r"metronome|^count$", re.I)


def run_mma(args, cwd=None, timeout=120):
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run(["mma", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def mma_messages(proc):
    lines = (proc.stdout + proc.stderr).splitlines()
    return " ".join(l.strip() for l in lines
                    if l.strip() and "PLUGIN" not in l and not l.startswith("Creating"))[:300]


def doc_block(text):
    """A library file's notes: its Begin Doc ... End block or its Doc lines."""
    text = re.sub(r"\\[ \t]*\n", " ", text)
    blocks = re.findall(r"^\s*Begin\s+Doc\s*$(.*?)^\s*End\s*$", text, re.I | re.M | re.S)
    blocks += re.findall(r"^[ \t]*Doc[ \t]+(.*)$", text, re.I | re.M)
    return " ".join(" ".join(blocks).split())


def doc_tempo(doc):
    m = DOC_TEMPO.search(doc)
    if not m:
        return None
    numbers = [int(g) for g in m.groups() if g]
    numbers = [n for n in numbers if 40 <= n <= 320]
    return round(sum(numbers) / len(numbers)) if numbers else None


def style_of(name):
    for pattern, family, tempo in STYLES:
        if re.search(pattern, name.lower()):
            return family, tempo
    raise AssertionError(name)


def role_of(name, description):
    d = description.lower()
    if COUNT_IN.search(name):
        return "count-in"
    if INTRO.search(name) or d.startswith("intro"):
        return "intro"
    if FILL.search(name) or "fill-in" in d or d.startswith("fill"):
        return "fill"
    if ENDING.search(name) or d.startswith("ending") or re.search(r",\s*ending\b", d):
        return "end"
    return "main"


def defgrooves(text):
    """(name, description) of each DefGroove line, continuation lines joined; a name defined
    twice in a file counts once (MMA keeps the later definition, and names ignore case)."""
    text = re.sub(r"\\[ \t]*\n", " ", text)
    found = {}
    for m in re.finditer(r"^[ \t]*DefGroove[ \t]+(\S+)[ \t]*(.*)$", text, re.I | re.M):
        found.setdefault(m.group(1).lower(), [m.group(1), ""])[1] = " ".join(m.group(2).split())
    return [tuple(v) for v in found.values()]


def discover(lib, libraries, log):
    """Every groove of every library file: name, description, role, and from MMA itself its
    metre and sequence size."""
    files = []
    for library in libraries:
        for path in sorted((lib / library).glob("*.mma")):
            text = path.read_text(errors="replace")
            if "DefGroove" not in text and "defgroove" not in text.lower():
                continue
            grooves = defgrooves(text)
            doc = doc_block(text)
            own = re.search(r"^\s*Tempo\s+(\d+)", text, re.I | re.M)
            family, tempo = style_of(f"{library}/{path.stem}")
            entry = {"library": library, "stem": path.stem, "path": str(path),
                     "family": family, "doc": doc[:400],
                     "tempo": doc_tempo(doc) or (int(own.group(1)) if own else tempo),
                     "tempo_from": ("the file's notes" if doc_tempo(doc) else
                                    "the file's Tempo line" if own else "its style"),
                     "grooves": [{"name": name, "description": description,
                                  "role": role_of(name, description)}
                                 for name, description in grooves]}
            probe_metres(entry, log)
            files.append(entry)
    return files


def probe_metres(entry, log):
    """Asks MMA for each groove's beats per bar (Time) and time signature."""
    lines = [f"Use {entry['path']}"]
    for g in entry["grooves"]:
        lines += [f"Groove {g['name']}", "Print @@ $_Groove $_Time $_SeqSize $_TimeSig"]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"groove-probe-{os.getpid()}.mma"
    tmp.write_text("\n".join(lines) + "\n")
    try:
        proc = run_mma(["-n", str(tmp)])
    finally:
        tmp.unlink(missing_ok=True)
    found = [l.split()[1:] for l in proc.stdout.splitlines() if l.startswith("@@")]
    for g, f in zip(entry["grooves"], found):
        g["time"] = float(f[1])
        g["size"] = int(f[2])
        g["timesig"] = f[3] if len(f) > 3 else ""
    for g in entry["grooves"][len(found):]:
        g["time"], g["size"] = None, 1  # MMA stopped before reaching it
    if len(found) < len(entry["grooves"]):
        log(f"  {entry['library']}/{entry['stem']}: metre of {len(entry['grooves']) - len(found)}"
            f" grooves unknown ({mma_messages(proc)})")


def safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def plan(files):
    """One song per main groove of each library file, and more takes of the file's mains
    while its intros, fills or endings outnumber them, so that every groove plays. A file
    without mains (zoom's intro and ending sets) lends its grooves to its library's mains
    of the same metre."""
    pools = {}
    for f in files:
        if f.get("family") is None or not f["grooves"]:
            continue
        if not any(g["role"] == "main" for g in f["grooves"]):
            for g in f["grooves"]:
                pools.setdefault((f["library"], g["time"], g["role"]), []).append((f, g))
    songs, counters = [], {}
    for f in files:
        if f.get("family") is None or not f["grooves"]:
            continue
        mains = [g for g in f["grooves"] if g["role"] == "main"]
        if not mains:
            continue
        own = {r: [(f, g) for g in f["grooves"] if g["role"] == r]
               for r in ("intro", "fill", "end")}
        takes = max(len(mains), *(len(v) for v in own.values()))
        for j in range(takes):
            main = mains[j % len(mains)]
            parts = {}
            for role in ("intro", "fill", "end"):
                choices = ([(ff, g) for ff, g in own[role] if g["time"] == main["time"]]
                           or pools.get((f["library"], main["time"], role), []))
                if choices:
                    k = j if own[role] else counters.setdefault((f["library"], role), 0)
                    if not own[role]:
                        counters[(f["library"], role)] += 1
                    parts[role] = choices[k % len(choices)]
            n = counters.setdefault(f["family"], 0)
            counters[f["family"]] += 1
            options = FAMILY_PROGRESSIONS[f["family"]]
            progression = options[n % len(options)]
            shift = KEYS[(n // len(options) + n) % len(KEYS)][1]
            tonic = TONIC[progression]
            key = NOTE_NAMES[(NOTE_NAMES.index(tonic.rstrip("m")) + shift) % 12] + tonic[1:]
            stem = f"{f['library']}-{safe(main['name'])}" + (f"-{j // len(mains) + 1}"
                                                              if j >= len(mains) else "")
            songs.append({"file": f"{f['family']}/{stem}.mid", "library": f["library"],
                          "source": f"{f['library']}/{f['stem']}.mma", "family": f["family"],
                          "main": main, "main_file": f, "parts": parts,
                          "progression": progression, "key": key, "transpose": shift,
                          "tempo": f["tempo"], "tempo_from": f["tempo_from"]})
    return songs


def bar_line(chords, beats):
    """One MMA chord line: chords split the bar evenly (two chords: at half the bar)."""
    items = chords.split()
    beats = beats or 4
    out = [items[0]]
    for k, chord in enumerate(items[1:], 1):
        at = 1 + k * beats / len(items)
        out.append(f"{chord}@{at:g}")
    return " ".join(out)


def song_text(song):
    prog = PROGRESSIONS[song["progression"]]
    main, parts = song["main"], song["parts"]
    seed = zlib.crc32(song["file"].encode()) & 0x7FFFFFFF
    used = {song["main_file"]["path"]} | {f["path"] for f, _ in parts.values()}
    lines = [f"// {song['file']}: {main['name']} from {song['source']}",
             f"// over {song['progression']} in {song['key']}, {song['tempo']} beats a minute",
             f"RndSeed {seed}"]
    lines += [f"Use {p}" for p in sorted(used)]
    lines += [f"Tempo {song['tempo']}", f"Transpose {song['transpose']}"]
    bars, sections = [], []

    def play(groove, chords):
        if not sections or sections[-1][0] != groove["name"]:
            sections.append((groove["name"], len(bars)))
            lines.append(f"Groove {groove['name']}")
        bars.append(groove["name"])
        lines.append(f"{len(bars)} {bar_line(chords, groove['time'])}")

    if "intro" in parts:
        intro = parts["intro"][1]
        n = max(1, min(intro["size"], MAX_INTRO_BARS))
        for k in range(n):  # the progression's last bars, leading into its first
            play(intro, prog[(len(prog) - n + k) % len(prog)])
    reps = math.ceil(BODY_BARS / len(prog))
    fill = parts.get("fill", (None, None))[1]
    fill_bars = max(1, min(fill["size"], MAX_FILL_BARS)) if fill else 0
    for r in range(reps):
        for k, chords in enumerate(prog):
            in_fill = fill and r < reps - 1 and k >= len(prog) - fill_bars
            play(fill if in_fill else main, chords)
    tonic = TONIC[song["progression"]]
    if "end" in parts:
        end = parts["end"][1]
        for k in range(max(1, min(end["size"], MAX_END_BARS))):
            play(end, tonic)
    else:
        play(main, tonic)
    song["bars"] = len(bars)
    song["seed"] = seed
    return "\n".join(lines) + "\n"


def render(songs, out, log):
    failures = []
    src = out / ".mma"
    src.mkdir(parents=True, exist_ok=True)
    started = time.time()
    for i, song in enumerate(songs, 1):
        target = out / song["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        mma_file = src / (song["file"][:-4].replace("/", "--") + ".mma")
        mma_file.write_text(song_text(song))
        target.unlink(missing_ok=True)
        try:
            # From the song's folder, so that the name MMA writes into the file is the
            # song's own and not where OUT happens to be.
            proc = run_mma(["-f", str(target), mma_file.name], cwd=src)
            ok = proc.returncode == 0 and target.exists() and target.stat().st_size > 0
            message = mma_messages(proc)
        except subprocess.TimeoutExpired:
            ok, message = False, "timed out"
        if not ok:
            target.unlink(missing_ok=True)
            failures.append({"file": song["file"], "groove": song["main"]["name"],
                             "source": song["source"], "error": message})
            log(f"  failed: {song['file']}: {message}")
        if i % 100 == 0:
            log(f"  {i}/{len(songs)} rendered, {time.time() - started:.0f} s")
    return failures


# ------------------------------------------------------------------------------------------
# Counting: a small Standard MIDI File reader.
GM_FAMILIES = ["Piano", "Chromatic Percussion", "Organ", "Guitar", "Bass", "Strings",
               "Ensemble", "Brass", "Reed", "Pipe", "Synth Lead", "Synth Pad", "Synth Effects",
               "Ethnic", "Percussive", "Sound Effects"]
GM_DRUMS = {
    35: "Acoustic Bass Drum", 36: "Bass Drum 1", 37: "Side Stick", 38: "Acoustic Snare",
    39: "Hand Clap", 40: "Electric Snare", 41: "Low Floor Tom", 42: "Closed Hi-Hat",
    43: "High Floor Tom", 44: "Pedal Hi-Hat", 45: "Low Tom", 46: "Open Hi-Hat",
    47: "Low-Mid Tom", 48: "Hi-Mid Tom", 49: "Crash Cymbal 1", 50: "High Tom",
    51: "Ride Cymbal 1", 52: "Chinese Cymbal", 53: "Ride Bell", 54: "Tambourine",
    55: "Splash Cymbal", 56: "Cowbell", 57: "Crash Cymbal 2", 58: "Vibraslap",
    59: "Ride Cymbal 2", 60: "Hi Bongo", 61: "Low Bongo", 62: "Mute Hi Conga",
    63: "Open Hi Conga", 64: "Low Conga", 65: "High Timbale", 66: "Low Timbale",
    67: "High Agogo", 68: "Low Agogo", 69: "Cabasa", 70: "Maracas", 71: "Short Whistle",
    72: "Long Whistle", 73: "Short Guiro", 74: "Long Guiro", 75: "Claves", 76: "Hi Wood Block",
    77: "Low Wood Block", 78: "Mute Cuica", 79: "Open Cuica", 80: "Mute Triangle",
    81: "Open Triangle"}
# Pieces General MIDI 2 (and Roland GS) add at either end of the map; some library files use them.
GM2_DRUMS = {
    27: "High Q", 28: "Slap", 29: "Scratch Push", 30: "Scratch Pull", 31: "Sticks",
    32: "Square Click", 33: "Metronome Click", 34: "Metronome Bell", 82: "Shaker",
    83: "Jingle Bell", 84: "Belltree", 85: "Castanets", 86: "Mute Surdo", 87: "Open Surdo"}


def drum_name(key):
    if key in GM_DRUMS:
        return GM_DRUMS[key]
    if key in GM2_DRUMS:
        return f"{GM2_DRUMS[key]} (GM2)"
    return f"key {key} (no GM piece)"


def read_var(data, i):
    value = 0
    while True:
        b = data[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, i


def read_midi(path):
    """(seconds, notes) of a format 0/1 file; notes as (channel, program, key)."""
    data = path.read_bytes()
    if data[:4] != b"MThd":
        raise ValueError("not a MIDI file")
    division = int.from_bytes(data[12:14], "big")
    if division & 0x8000:
        raise ValueError("SMPTE time")
    events, i = [], 8 + int.from_bytes(data[4:8], "big")
    while i + 8 <= len(data):
        kind, size = data[i:i + 4], int.from_bytes(data[i + 4:i + 8], "big")
        j, end, tick, status = i + 8, i + 8 + size, 0, 0
        i = end
        if kind != b"MTrk":
            continue
        while j < end:
            delta, j = read_var(data, j)
            tick += delta
            if data[j] & 0x80:
                status = data[j]
                j += 1
            if status == 0xFF:
                meta = data[j]
                length, j = read_var(data, j + 1)
                if meta == 0x51:
                    events.append((tick, 0, "tempo", int.from_bytes(data[j:j + 3], "big"), 0))
                j += length
            elif status in (0xF0, 0xF7):
                length, j = read_var(data, j)
                j += length
            else:
                high, channel = status & 0xF0, status & 0x0F
                if high in (0xC0, 0xD0):
                    if high == 0xC0:
                        events.append((tick, 1, "program", channel, data[j]))
                    j += 1
                else:
                    a, b = data[j], data[j + 1]
                    j += 2
                    if high == 0x90 and b > 0:
                        events.append((tick, 2, "on", channel, a))
                    elif high in (0x80, 0x90):
                        events.append((tick, 2, "off", channel, a))
    events.sort(key=lambda e: (e[0], e[1]))
    programs, notes, last = [0] * 16, [], 0
    seconds, tempo, at = 0.0, 500000, 0
    for tick, _, what, a, b in events:
        seconds += (tick - at) * tempo / division / 1e6
        at = tick
        if what == "tempo":
            tempo = a
        elif what == "program":
            programs[a] = b
        elif what == "on":
            notes.append((a, programs[a], b))
            last = seconds
        else:
            last = seconds
    return last, notes


def statistics(out, manifest):
    """Counts the files the manifest lists (not whatever else OUT holds)."""
    songs_meta, failures, skipped = manifest["summary"], manifest["failed"], manifest["skipped"]
    elapsed = songs_meta["render_seconds"]
    failed = {f["file"] for f in failures}
    files = [out / s["file"] for s in manifest["songs"] if s["file"] not in failed]
    families, drums, by_style = {}, {}, {}
    total_seconds, total_notes, unreadable, drum_only = 0.0, 0, [], 0
    for path in files:
        try:
            seconds, notes = read_midi(path)
        except (ValueError, IndexError) as error:
            unreadable.append(f"{path.relative_to(out)}: {error}")
            continue
        total_seconds += seconds
        total_notes += len(notes)
        drum_only += all(channel == 9 for channel, _, _ in notes)
        style = by_style.setdefault(path.parent.name, {"files": 0, "seconds": 0.0, "notes": 0})
        style["files"] += 1
        style["seconds"] += seconds
        style["notes"] += len(notes)
        for channel, program, key in notes:
            if channel == 9:
                families["Drums (channel 10)"] = families.get("Drums (channel 10)", 0) + 1
                piece = drum_name(key)
                drums[piece] = drums.get(piece, 0) + 1
            else:
                family = GM_FAMILIES[program // 8]
                families[family] = families.get(family, 0) + 1
    stats = {
        "files": len(files), "drum_only_files": drum_only, "unreadable": unreadable,
        "hours": round(total_seconds / 3600, 2), "notes": total_notes,
        "grooves_in_library": songs_meta["grooves"],
        "grooves_played": songs_meta["played"],
        "songs_planned": songs_meta["songs"],
        "render_seconds": round(elapsed, 1),
        "failed": failures, "skipped": skipped,
        "notes_per_gm_family": dict(sorted(families.items(), key=lambda kv: -kv[1])),
        "drum_notes_per_kit_piece": dict(sorted(drums.items(), key=lambda kv: -kv[1])),
        "per_style_family": {k: {"files": v["files"], "hours": round(v["seconds"] / 3600, 2),
                                 "notes": v["notes"]} for k, v in sorted(by_style.items())},
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    w = []
    w.append(f"files {stats['files']} ({drum_only} drums only)   hours {stats['hours']}   "
             f"notes {total_notes:,}")
    w.append(f"grooves in the library {stats['grooves_in_library']}, played "
             f"{stats['grooves_played']}, songs planned {stats['songs_planned']}, "
             f"failed {len(failures)}, left out {len(skipped)}")
    w.append("")
    w.append(f"{'style family':<24}{'files':>8}{'hours':>8}{'notes':>12}")
    for k, v in stats["per_style_family"].items():
        w.append(f"{k:<24}{v['files']:>8}{v['hours']:>8.2f}{v['notes']:>12,}")
    w.append("")
    w.append(f"{'GM family':<24}{'notes':>12}{'share':>8}")
    for k, v in stats["notes_per_gm_family"].items():
        w.append(f"{k:<24}{v:>12,}{100 * v / max(1, total_notes):>7.1f}%")
    w.append("")
    drum_total = sum(drums.values())
    w.append(f"{'GM drum (channel 10)':<24}{'notes':>12}{'share':>8}")
    for k, v in stats["drum_notes_per_kit_piece"].items():
        w.append(f"{k:<24}{v:>12,}{100 * v / max(1, drum_total):>7.1f}%")
    if failures:
        w.append("")
        w.append("failed:")
        w += [f"  {f['file']} ({f['source']}): {f['error']}" for f in failures]
    (out / "stats.txt").write_text("\n".join(w) + "\n")
    return "\n".join(w)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--lib", type=Path, default=Path("/usr/share/mma/lib"))
    parser.add_argument("--libraries", default="stdlib,casio,kara,pflib,yamaha,zoom,alexis")
    parser.add_argument("--limit", type=int, default=0,
                        help="render N songs spread evenly over the plan (0: all)")
    parser.add_argument("--stats-only", action="store_true")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    def log(message):
        print(message, flush=True)

    if args.stats_only:
        print(statistics(out, json.loads((out / "manifest.json").read_text())))
        return
    started = time.time()
    libraries = [l for l in args.libraries.split(",") if l]
    log(f"reading the grooves of {', '.join(libraries)} in {args.lib}")
    files = discover(args.lib, libraries, log)
    grooves = sum(len(f["grooves"]) for f in files)
    songs = plan(files)
    if args.limit and args.limit < len(songs):
        step = len(songs) / args.limit
        songs = [songs[int(k * step)] for k in range(args.limit)]
    played = {(s["main_file"]["path"], s["main"]["name"]) for s in songs}
    played |= {(f["path"], g["name"]) for s in songs for f, g in s["parts"].values()}
    skipped = [{"groove": g["name"], "source": f"{f['library']}/{f['stem']}.mma",
                "why": ("a count-in or the empty groove" if f.get("family") is None
                        or g["role"] == "count-in" else
                        "metre unknown" if g.get("time") is None else "not reached by the plan")}
               for f in files for g in f["grooves"] if (f["path"], g["name"]) not in played]
    if args.limit:
        skipped = [s for s in skipped if s["why"] != "not reached by the plan"]
    log(f"{grooves} grooves in {len(files)} files; {len(songs)} songs to render")
    failures = render(songs, out, log)
    elapsed = time.time() - started
    manifest = {
        "summary": {"grooves": grooves, "played": len(played), "songs": len(songs),
                    "render_seconds": round(elapsed, 1)},
        "songs": [{"file": s["file"], "groove": s["main"]["name"], "source": s["source"],
                   "intro": s["parts"].get("intro", (0, {"name": None}))[1]["name"],
                   "fill": s["parts"].get("fill", (0, {"name": None}))[1]["name"],
                   "end": s["parts"].get("end", (0, {"name": None}))[1]["name"],
                   "progression": s["progression"], "key": s["key"], "tempo": s["tempo"],
                   "tempo_from": s["tempo_from"], "beats_per_bar": s["main"]["time"],
                   "bars": s["bars"], "seed": s["seed"]} for s in songs],
        "failed": failures, "skipped": skipped,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(statistics(out, manifest))


if __name__ == "__main__":
    sys.exit(main())
