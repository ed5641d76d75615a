"""Deterministic generator for the ``device-control`` suite (requests to the Hearth smart-home hub).

Run ``python suites/device-control/make_data.py [OUT_DIR]`` from anywhere; it (re)writes, under OUT_DIR
(default: the folder of this script), data/train.jsonl (320 records) and data/eval.jsonl (120).
Standard library only, seeded with random.Random(SEED); the output is byte-identical across runs and
does not depend on PYTHONHASHSEED.

Each record is OpenAI's fine-tuning chat format with tools: one user request, the gold assistant turn
(`tool_calls` with `content` null, or a short refusal as plain `content`), the 8 Hearth tools and
`parallel_tool_calls`. `label` is the called tool names joined by "+" in call order, or "none".
Per split: 15% requests no tool can do (rejections), 5% two actions in one message (two calls,
parallel_tool_calls true), the rest one call, the same number for each tool. No request is repeated
within a split; an eval request is neither a train request with another greeting ("Hearth, lock the back
door" after train's "Lock the back door!") nor near one by the TF-IDF cosine check-data's near_leakage
error uses, so `harness check-data` passes the suite.

The gold arguments follow fixed rules (README.md, "Argument rules"): an optional argument is set only
when the request says it (no defaults filled in); room and door words map to fixed enum values; numbers
in words or digits are the number they say ("half an hour" is 30 minutes, "full brightness" 100).
Beside this script: tools.json (the 8 tools, hand-written) and templates.txt (the phrasings, slot values
and refusals); this file holds the rules and the drawing.
"""

from __future__ import annotations

import json
import math
import random
import re
import sys
from collections import Counter
from pathlib import Path

SEED = 20260423
HERE = Path(__file__).resolve().parent
SIZES = {"train": 320, "eval": 120}
REJECT_SHARE, PARALLEL_SHARE = 0.15, 0.05
MAX_DRAWS, NEW_CORE_DRAWS = 500, 50
NEAR = 0.8  # check-data's near_leakage error is at 0.9

# enum value -> the words a request may use for it
ROOMS = {
    "living_room": ["living room", "lounge", "sitting room", "front room"],
    "kitchen": ["kitchen"],
    "bedroom": ["bedroom"],
    "bathroom": ["bathroom"],
    "hall": ["hall", "hallway"],
    "office": ["office", "study"],
}
DOORS = {"front": ["front door"], "back": ["back door"], "garage": ["garage door"], "patio": ["patio door"]}
# The 8 tools in OpenAI's format, as every record carries them (their room and door enums are the keys above)
TOOLS = json.loads((HERE / "tools.json").read_text(encoding="utf-8"))
TOOL_NAMES = [t["function"]["name"] for t in TOOLS]
_PARAMETERS = {t["function"]["name"]: t["function"]["parameters"]["properties"] for t in TOOLS}
assert _PARAMETERS["set_light"]["room"]["enum"] == list(ROOMS), "tools.json rooms must be the keys of ROOMS"
assert _PARAMETERS["lock_door"]["door"]["enum"] == list(DOORS), "tools.json doors must be the keys of DOORS"

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def words(n: int) -> str:
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("-" + ONES[n % 10] if n % 10 else "")
    return "a hundred" if n == 100 else str(n)


def number(rng: random.Random, n: int) -> str:
    """A number as a request says it: digits, or words one time in three."""
    return words(n) if rng.random() < 0.33 else str(n)


def room(rng: random.Random) -> tuple[str, str]:
    value = rng.choice(list(ROOMS))
    return value, rng.choice(ROOMS[value])


def door(rng: random.Random) -> tuple[str, str]:
    value = rng.choice(list(DOORS))
    return value, rng.choice(DOORS[value])


def read_templates(path: Path) -> tuple[dict[str, list[str]], list[tuple[str, list[str]]]]:
    """templates.txt: [section] headers, one template per line; `[reject] REPLY` sections go to a list."""
    sections: dict[str, list[str]] = {}
    rejects: list[tuple[str, list[str]]] = []
    lines: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            name, _, reply = line[1:].partition("]")
            lines = []
            if name == "reject":
                rejects.append((reply.strip(), lines))
            else:
                sections[name] = lines
        else:
            lines.append(line)
    return sections, rejects


def numbered(lines: list[str]) -> list[tuple[int, str]]:
    """`N = text` lines as (N, text)."""
    return [(int(n), text.strip()) for n, _, text in (line.partition("=") for line in lines)]


T, REJECTS = read_templates(HERE / "templates.txt")
SLOTS = {name.removeprefix("slot."): values for name, values in T.items() if name.startswith("slot.")}
# (prefix, ending) around an imperative request; "!" forms only get the first four
POLITE = [
    ("", ""),
    ("", ""),
    ("hey Hearth, ", ""),
    ("Hearth, ", ""),
    ("please ", ""),
    ("could you ", "?"),
    ("can you ", "?"),
    ("", " please"),
    ("", ", thanks"),
    ("hi, ", ", thank you"),
    ("", " now"),
]


def temperature(rng: random.Random) -> tuple[float | int, str]:
    if rng.random() < 0.15:
        value = rng.randint(16, 25) + 0.5
        return value, rng.choice([f"{value} degrees", f"{int(value)} and a half degrees"])
    n = rng.randint(16, 26)
    return n, rng.choice([f"{n} degrees", f"{n}°C", f"{words(n)} degrees", str(n)])


def duration(rng: random.Random) -> tuple[int, str]:
    if rng.random() < 0.35:
        return rng.choice(numbered(T["durations"]))
    n = rng.choice([1, 2, 3, 4, 5, 7, 8, 10, 12, 20, 25, 35, 40, 50, 55, 70, 100])
    unit = "minute" if n == 1 else rng.choice(["minutes", "minutes", "min", "mins"])
    return n, f"{'one' if n == 1 else number(rng, n)} {unit}"


def light(rng: random.Random) -> tuple[str, list]:
    value, r = room(rng)
    kind = rng.choice(["on", "on", "off", "off", "level", "level", "level"])
    if kind == "level":  # any brightness switches the lights on
        if rng.random() < 0.2:
            n, template = rng.choice(numbered(T["light.special"]))
        else:
            n, template = rng.randrange(10, 95, 5), rng.choice(T["light.level"])
        p = rng.choice([f"{n}%", f"{n} percent", f"{words(n)} percent"])
        return template.format(r=r, p=p, n=number(rng, n)), [
            ("set_light", {"room": value, "state": "on", "brightness": n})
        ]
    return rng.choice(T[f"light.{kind}"]).format(r=r), [("set_light", {"room": value, "state": kind})]


def thermostat(rng: random.Random) -> tuple[str, list]:
    value, r = room(rng)
    degrees, t = temperature(rng)
    args = {"room": value, "temperature": degrees}
    if rng.random() < 0.45:  # the mode only when the request names it
        mode = rng.choice(["heat", "cool", "auto"])
        return rng.choice(T[f"thermostat.{mode}"]).format(r=r, t=t), [("set_thermostat", {**args, "mode": mode})]
    return rng.choice(T["thermostat"]).format(r=r, t=t), [("set_thermostat", args)]


def lock(rng: random.Random) -> tuple[str, list]:
    value, d = door(rng)
    locked = rng.random() < 0.55
    return rng.choice(T["lock" if locked else "unlock"]).format(d=d), [("lock_door", {"door": value, "locked": locked})]


def music(rng: random.Random) -> tuple[str, list]:
    value, r = room(rng)
    query = rng.choice(T["genres"] + T["artists"])
    args = {"room": value, "query": query}
    with_volume = rng.random() < 0.45
    forms = [f for f in T["music.volume" if with_volume else "music"] if query in T["genres"] or "some" not in f]
    if with_volume:
        n = rng.randrange(10, 95, 5)
        form = rng.choice(T["volume"])
        v = form.format(n=n if "%" in form else number(rng, n))  # "forty% volume" is no way to write it
        return rng.choice(forms).format(q=query, r=r, v=v), [("play_music", {**args, "volume": n})]
    return rng.choice(forms).format(q=query, r=r), [("play_music", args)]


def timer(rng: random.Random) -> tuple[str, list]:
    minutes, m = duration(rng)
    if rng.random() < 0.4:
        label = rng.choice(T["labels"])
        return rng.choice(T["timer.label"]).format(m=m, l=label), [("set_timer", {"minutes": minutes, "label": label})]
    return rng.choice(T["timer"]).format(m=m), [("set_timer", {"minutes": minutes})]


def vacuum(rng: random.Random) -> tuple[str, list]:
    values = rng.sample(list(ROOMS), rng.choice([1, 1, 2, 2, 3]))
    said = [rng.choice(ROOMS[v]) for v in values]
    rs = said[0] if len(said) == 1 else ", ".join(said[:-1]) + rng.choice([" and ", " and the "]) + said[-1]
    return rng.choice(T["vacuum"]).format(rs=rs), [("start_vacuum", {"rooms": values})]


def alarm(rng: random.Random) -> tuple[str, list]:
    mode = rng.choice(["away", "home", "off"])
    text = rng.choice(T[f"alarm.{mode}"]).format(**{slot: rng.choice(SLOTS[slot]) for slot in ("out", "stay", "back")})
    return text, [("arm_alarm", {"mode": mode})]


def weather(rng: random.Random) -> tuple[str, list]:
    day = rng.choice(["today", "tomorrow"])
    return rng.choice(T["weather"]).format(w=rng.choice(SLOTS[day])), [("get_weather", {"day": day})]


SINGLE = {
    "set_light": light,
    "set_thermostat": thermostat,
    "lock_door": lock,
    "play_music": music,
    "set_timer": timer,
    "start_vacuum": vacuum,
    "arm_alarm": alarm,
    "get_weather": weather,
}
# the tools a two-action request calls, in the order it says them; every pair is in train
PAIRS = [
    ("set_light", "set_light"),  # two rooms' lights, one state
    ("lock_door", "lock_door"),  # two doors
    ("lock_door", "arm_alarm"),
    ("set_light", "lock_door"),
    ("set_light", "play_music"),
    ("set_timer", "play_music"),
    ("set_thermostat", "set_light"),
    ("start_vacuum", "play_music"),
    ("get_weather", "set_thermostat"),
]


def imperative(rng: random.Random, name: str) -> tuple[str, list]:
    """One action as an imperative clause, for joining two into one request."""
    while True:
        text, calls = SINGLE[name](rng)
        if not text.startswith("!"):
            return text, calls


def parallel(rng: random.Random, pair: tuple[str, str]) -> tuple[str, list]:
    """Two actions in one message: two rooms' lights, two doors, or two different tools."""
    if pair == ("set_light", "set_light"):
        state = rng.choice(["on", "off"])
        v1, v2 = rng.sample(list(ROOMS), 2)
        text = rng.choice(T["parallel.lights"]).format(s=state, a=rng.choice(ROOMS[v1]), b=rng.choice(ROOMS[v2]))
        return text, [("set_light", {"room": v, "state": state}) for v in (v1, v2)]
    if pair == ("lock_door", "lock_door"):
        locked = rng.random() < 0.6
        v1, v2 = rng.sample(list(DOORS), 2)
        text = f"{'lock' if locked else 'unlock'} the {DOORS[v1][0]} and the {DOORS[v2][0]}"
        return text, [("lock_door", {"door": v, "locked": locked}) for v in (v1, v2)]
    (a, calls_a), (b, calls_b) = imperative(rng, pair[0]), imperative(rng, pair[1])
    return a + rng.choice([" and ", " and then ", ", then "]) + b, calls_a + calls_b


def reject(rng: random.Random) -> tuple[str, str]:
    reply, templates = rng.choice(REJECTS)
    slots = {key: rng.choice(values) for key, values in SLOTS.items()}
    slots.update(r=room(rng)[1], d=door(rng)[1], a=rng.randint(3, 19), b=rng.randint(3, 19))
    slots["hot"] = rng.choice([4, 5, 6, 7, 8, 9, 31, 32, 33, 35, 38, 40])  # outside the thermostat's 10-30
    slots["hours"] = number(rng, rng.randint(4, 10))  # past the timer's 180 minutes
    return rng.choice(templates).format(**slots), "Sorry, I can't do that: " + reply.format(**slots)


def polish(rng: random.Random, text: str) -> str:
    """The request as a user types it: a greeting or a please around an imperative, a capital letter."""
    if text.startswith("!"):
        prefix, end = rng.choice(POLITE[:4])
        text = prefix + text[1:] + ("" if text.endswith("?") else rng.choice(["", "."]))
    else:
        prefix, end = rng.choice(POLITE)
        text = prefix + text + (end or rng.choice(["", ".", "!"]))
    return text[:1].upper() + text[1:]


def key(text: str) -> str:
    """A request's text without case and punctuation: two requests with one key are the same."""
    return " ".join(re.sub(r"[^a-z0-9%]+", " ", text.lower()).split())


def gist(text: str) -> str:
    """The words check-data compares (2+ characters): "a timer for 4 minutes" is "timer for minutes"."""
    return " ".join(re.findall(r"\w\w+", text.casefold()))


def assistant(calls: list) -> dict:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for n, (name, args) in enumerate(calls, 1)
        ],
    }


def grams(text: str) -> list[str]:
    """Word uni- and bigrams as harness check-data counts them (scikit-learn: words of 2+ characters)."""
    tokens = gist(text).split()
    return tokens + [f"{x} {y}" for x, y in zip(tokens, tokens[1:])]


class Nearness:
    """TF-IDF cosine (sublinear tf, smoothed idf) of a request to the nearest of some texts: the measure
    of check-data's near_leakage error, with the idf of these texts alone (hence NEAR's margin)."""

    def __init__(self, texts: list[str]) -> None:
        counts = [Counter(grams(text)) for text in texts]
        df = Counter(gram for count in counts for gram in count)
        self.idf = {gram: math.log((1 + len(texts)) / (1 + n)) + 1 for gram, n in df.items()}
        self.rare = math.log(1 + len(texts)) + 1  # a gram none of the texts has
        self.vectors = [self.vector(count) for count in counts]

    def vector(self, count: Counter) -> dict[str, float]:
        weights = {g: (1 + math.log(n)) * self.idf.get(g, self.rare) for g, n in count.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {g: w / norm for g, w in weights.items()}

    def nearest(self, text: str) -> float:
        v = self.vector(Counter(grams(text)))
        return max((sum(w * u.get(g, 0.0) for g, w in v.items()) for u in self.vectors), default=0.0)


def draw(rng: random.Random, kind: str) -> tuple[str, str, dict, str]:
    """(request before its greeting, request, gold assistant message, label) for one kind: a tool name,
    "reject" or "parallel:N" (PAIRS[N])."""
    if kind == "reject":
        core, reply = reject(rng)
        return core, polish(rng, core), {"role": "assistant", "content": reply}, "none"
    if kind.startswith("parallel:"):
        core, calls = parallel(rng, PAIRS[int(kind.split(":")[1])])
    else:
        core, calls = SINGLE[kind](rng)
    return core, polish(rng, core), assistant(calls), "+".join(name for name, _ in calls)


def build_split(
    rng: random.Random, split: str, held: set[str], near: Nearness | None = None
) -> tuple[list[dict], set[str]]:
    """The split's records and the requests they hold before greetings (`gist`s). `held`: such requests
    no record may reuse (train's, for eval: "Hearth, lock the back door" is no new test of "Lock the
    back door!"); `near`: the texts no request may come NEAR (train's, for eval). Within a split a
    request is new text, and a new request where NEW_CORE_DRAWS draws find one."""
    size = SIZES[split]
    rejects, parallels = round(size * REJECT_SHARE), round(size * PARALLEL_SHARE)
    per_tool, extra = divmod(size - rejects - parallels, len(TOOL_NAMES))
    assert extra == 0, "singles split evenly over the tools"
    pairs = [f"parallel:{n}" for n in range(len(PAIRS))]
    pairs = (pairs * (1 + parallels // len(pairs)))[:parallels] if split == "train" else rng.sample(pairs, parallels)
    kinds = ["reject"] * rejects + pairs + [name for name in TOOL_NAMES for _ in range(per_tool)]
    rng.shuffle(kinds)
    records, texts, cores = [], set(), set()
    for n, kind in enumerate(kinds, 1):
        for attempt in range(MAX_DRAWS):
            core, text, gold, label = draw(rng, kind)
            fresh = gist(core) not in held and key(text) not in texts
            fresh = fresh and (near is None or near.nearest(text) < NEAR)
            if fresh and (gist(core) not in cores or attempt >= NEW_CORE_DRAWS):
                break
        else:
            raise RuntimeError(f"{split}: no new {kind} request in {MAX_DRAWS} draws: add templates")
        texts.add(key(text))
        cores.add(gist(core))
        records.append(
            {
                "id": f"{split}-{n:04d}",
                "messages": [{"role": "user", "content": text}, gold],
                "tools": TOOLS,
                "parallel_tool_calls": kind.startswith("parallel:"),
                "label": label,
            }
        )
    return records, cores


def generate() -> dict[str, str]:
    """Every file this script writes: relative path -> text."""
    rng = random.Random(SEED)
    train, train_cores = build_split(rng, "train", set())
    near = Nearness([record["messages"][0]["content"] for record in train])
    evals, _ = build_split(rng, "eval", train_cores, near)
    return {
        f"data/{split}.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        for split, records in (("train", train), ("eval", evals))
    }


def main(argv: list[str]) -> None:
    out = Path(argv[1]) if len(argv) > 1 else HERE
    for relative, text in generate().items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main(sys.argv)
