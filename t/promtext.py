#!/usr/bin/env python3
"""promtext.py [FILE] - a strict reader of the Prometheus text exposition
format (version 0.0.4), for the metrics suite: it checks what a scraper
would trip on, and more (histograms whole and cumulative, counters
never negative, no series twice, families never interleaved), then
prints each sample as `name{label="value",...} value`, labels sorted,
one a line.  On the first fault it prints `line N: why` on stderr and
exits 1.
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class Bad(Exception):
    pass


def number(text):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise Bad("not a number: %r" % text)
    return float(text)


def label_value(s, i):
    """The quoted value at s[i] ('"'), and the index after it."""
    out = []
    i += 1
    while True:
        if i >= len(s):
            raise Bad("unterminated label value")
        c = s[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            nxt = s[i + 1:i + 2]
            if nxt not in ("\\", '"', "n"):
                raise Bad("bad escape \\%s" % nxt)
            out.append("\n" if nxt == "n" else nxt)
            i += 2
            continue
        if c == "\n":
            raise Bad("newline in a label value")
        out.append(c)
        i += 1


def sample(line):
    m = NAME.match(line)
    if not m:
        raise Bad("no metric name")
    name, i, labels = m.group(0), m.end(), {}
    if line[i:i + 1] == "{":
        i += 1
        while line[i:i + 1] != "}":
            lm = LABEL.match(line, i)
            if not lm:
                raise Bad("bad label name")
            key = lm.group(0)
            if key.startswith("__") or key in labels:
                raise Bad("label %s reserved or repeated" % key)
            i = lm.end()
            if line[i:i + 1] != "=" or line[i + 1:i + 2] != '"':
                raise Bad("label %s: expected =\"" % key)
            labels[key], i = label_value(line, i + 1)
            if line[i:i + 1] == ",":
                i += 1
            elif line[i:i + 1] != "}":
                raise Bad("expected , or } after a label")
        i += 1
    rest = line[i:].split(" ")
    if rest[0] != "" or len(rest) not in (2, 3):
        raise Bad("expected one space, a value and maybe a timestamp")
    value = number(rest[1])
    if len(rest) == 3 and not re.fullmatch(r"-?\d+", rest[2]):
        raise Bad("bad timestamp")
    return name, labels, value


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            return base
    return name


def check_histograms(samples, types):
    series = {}
    for name, labels, value in samples:
        fam = family_of(name, types)
        if types.get(fam) != "histogram":
            continue
        if name == fam:
            raise Bad("histogram %s: a sample without a suffix" % fam)
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        h = series.setdefault((fam, rest), {"buckets": []})
        if name.endswith("_bucket"):
            if "le" not in labels:
                raise Bad("%s without le" % name)
            h["buckets"].append((number(labels["le"]), value))
        else:
            h[name[len(fam) + 1:]] = value
    for (fam, rest), h in series.items():
        les = [le for le, _ in h["buckets"]]
        if les != sorted(les) or len(set(les)) != len(les):
            raise Bad("histogram %s%s: le not increasing" % (fam, rest))
        if not les or les[-1] != math.inf:
            raise Bad("histogram %s%s: no +Inf bucket" % (fam, rest))
        counts = [v for _, v in h["buckets"]]
        if counts != sorted(counts):
            raise Bad("histogram %s%s: buckets not cumulative" % (fam, rest))
        if "count" not in h or "sum" not in h:
            raise Bad("histogram %s%s: no _sum or _count" % (fam, rest))
        if h["count"] != counts[-1]:
            raise Bad("histogram %s%s: _count is not the +Inf bucket"
                      % (fam, rest))


def read(text):
    if text and not text.endswith("\n"):
        raise Bad("the last line has no newline")
    types, helps, done, samples, seen = {}, set(), set(), [], set()
    sampled = set()
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        try:
            if line == "":
                raise Bad("empty line")
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    name = parts[2]
                    if not NAME.fullmatch(name):
                        raise Bad("bad name in %s" % parts[1])
                    if name in done or name in sampled:
                        raise Bad("%s after its samples" % parts[1])
                    if parts[1] == "TYPE":
                        if name in types or len(parts) != 4 or \
                                parts[3] not in TYPES:
                            raise Bad("bad or repeated TYPE")
                        types[name] = parts[3]
                    elif name in helps:
                        raise Bad("repeated HELP")
                    else:
                        helps.add(name)
                    if current is not None and current != name:
                        done.add(current)
                    current = name
                continue
            name, labels, value = sample(line)
            fam = family_of(name, types)
            if fam != current:
                if fam in done:
                    raise Bad("family %s interleaved" % fam)
                if current is not None:
                    done.add(current)
                current = fam
            sampled.add(fam)
            key = (name, tuple(sorted(labels.items())))
            if key in seen:
                raise Bad("series repeated")
            seen.add(key)
            if types.get(fam) == "counter":
                if value < 0 or math.isnan(value):
                    raise Bad("counter below zero")
                if not name.endswith("_total"):
                    raise Bad("counter %s does not end in _total" % name)
            samples.append((name, labels, value))
        except Bad as e:
            raise Bad("line %d: %s" % (n, e))
    check_histograms(samples, types)
    return samples


def show(value):
    if value == math.inf:
        return "+Inf"
    return ("%d" % value) if value == int(value) else repr(value)


def main():
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    try:
        samples = read(text)
    except Bad as e:
        print(e, file=sys.stderr)
        return 1
    for name, labels, value in samples:
        ls = ",".join('%s="%s"' % (k, v.replace("\\", "\\\\")
                                   .replace('"', '\\"').replace("\n", "\\n"))
                      for k, v in sorted(labels.items()))
        print("%s%s %s" % (name, "{%s}" % ls if ls else "", show(value)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
