#!/usr/bin/env python3
"""Writes the contexts of the engine-edge conformance cases and has the reference
engine answer them.

    python3 gen.py /path/to/shared/conformance/python-engine

Each case has one feature and one segment per condition: the result's segment list
says which conditions the engine holds true. The answers come from the engine
(oracle.py fill), never from hand. Values "@RAW:<text>" are written as raw JSON
text (to keep number forms such as 1E2 that json.dumps would rewrite).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

BIG = "123456789012345678901234567890"
D4300 = "1" * 4300
D4301 = "1" * 4301

CASES = {
    # integer-like strings beyond 64 bits and float precision
    "bigint": {
        "traits": {
            "big": BIG, "bigneg": "-" + BIG, "bigjson": "@RAW:" + BIG, "zeros": "000" + BIG,
            "i64max": "9223372036854775807", "i64over": "9223372036854775808",
            "p53": "9007199254740993", "p53json": "@RAW:9007199254740993",
            "small": "12", "huge": D4300, "fbig": "1" * 400 + ".5",
        },
        "conds": [
            ("big", "EQUAL", BIG), ("big", "EQUAL", "123456789012345678901234567891"),
            ("big", "NOT_EQUAL", "123456789012345678901234567891"), ("big", "NOT_EQUAL", BIG),
            ("big", "GREATER_THAN", "123456789012345678901234567889"),
            ("big", "GREATER_THAN", BIG), ("big", "GREATER_THAN_INCLUSIVE", BIG),
            ("big", "LESS_THAN", "123456789012345678901234567891"),
            ("big", "LESS_THAN_INCLUSIVE", "123456789012345678901234567889"),
            ("big", "EQUAL", "1.2345678901234568e+29"), ("big", "EQUAL", "123_456_789_012_345_678_901_234_567_890"),
            ("big", "EQUAL", " " + BIG + "\n"), ("big", "EQUAL", "+" + BIG), ("big", "EQUAL", "000" + BIG),
            ("big", "GREATER_THAN", "9223372036854775807"), ("big", "LESS_THAN", "-9223372036854775808"),
            ("big", "GREATER_THAN", "12"), ("big", "LESS_THAN", D4300), ("big", "LESS_THAN", D4301),
            ("bigneg", "LESS_THAN", "-123456789012345678901234567889"), ("bigneg", "EQUAL", "-" + BIG),
            ("bigneg", "GREATER_THAN", "-123456789012345678901234567891"), ("bigneg", "LESS_THAN", "0"),
            ("bigjson", "EQUAL", BIG), ("bigjson", "EQUAL", "123456789012345678901234567891"),
            ("zeros", "EQUAL", BIG), ("zeros", "IN", BIG + ",1"), ("big", "IN", "1," + BIG),
            ("big", "IN", "123456789012345678901234567891"),
            ("i64max", "EQUAL", "9223372036854775807"), ("i64over", "EQUAL", "9223372036854775808"),
            ("i64over", "GREATER_THAN", "9223372036854775807"), ("i64over", "EQUAL", "9223372036854775809"),
            ("i64over", "LESS_THAN", "9223372036854775809"),
            ("p53", "EQUAL", "9007199254740992"), ("p53", "GREATER_THAN", "9007199254740992"),
            ("p53json", "EQUAL", "9007199254740992"), ("p53json", "EQUAL", "9007199254740993"),
            ("small", "LESS_THAN", D4300), ("small", "LESS_THAN", D4301), ("small", "GREATER_THAN", "-" + D4301),
            ("small", "NOT_EQUAL", D4301), ("small", "LESS_THAN", "1_" * 4300 + "1"),
            ("huge", "EQUAL", D4300), ("huge", "GREATER_THAN", BIG), ("huge", "EQUAL", D4301),
            ("fbig", "EQUAL", "inf"), ("fbig", "GREATER_THAN", "1e308"), ("fbig", "EQUAL", BIG),
            ("big", "MODULO", "7|1"), ("big", "MODULO", "7|2"), ("big", "MODULO", "10|0"),
            ("bigneg", "MODULO", "7|6"), ("big", "PERCENTAGE_SPLIT", "50"), ("zeros", "PERCENTAGE_SPLIT", "50"),
        ],
    },
    # condition values as Python's int() and float() read them
    "numbers": {
        "traits": {"i": "12", "ineg": "-12", "f": "1.5", "fj": "@RAW:1.5", "e": "@RAW:1E2", "zero": "-0",
                   "fz": "-0.0", "tiny": "0.1", "s": "abc", "nanstr": "nan", "infstr": "inf"},
        "conds": [
            ("i", "EQUAL", "\uff11\uff12"), ("i", "EQUAL", "\u0661\u0662"), ("i", "EQUAL", " 12 "),
            ("i", "EQUAL", "1_2"), ("i", "EQUAL", "+12"), ("i", "EQUAL", "12.0"), ("i", "EQUAL", "0x0c"),
            ("i", "EQUAL", "\u200312\u3000"), ("i", "EQUAL", "12\x1c"), ("i", "EQUAL", "\u0660\u0661\u0662"),
            ("i", "EQUAL", "012"), ("i", "EQUAL", "1__2"), ("i", "EQUAL", "_12"), ("i", "EQUAL", "12_"),
            ("i", "EQUAL", "\t12\x0b\x0c"), ("i", "EQUAL", "12\x85"), ("i", "EQUAL", "12\xa0"),
            ("i", "EQUAL", "\U0001d7cf\U0001d7d0"), ("i", "EQUAL", "1\u00b2"), ("i", "EQUAL", "1 2"),
            ("i", "NOT_EQUAL", "12.0"), ("i", "NOT_EQUAL", "13"), ("i", "GREATER_THAN", "1e1"),
            ("i", "LESS_THAN", "+-13"), ("i", "EQUAL", "\u200b12"), ("ineg", "EQUAL", "-\uff11\uff12"),
            ("ineg", "EQUAL", "- 12"), ("zero", "EQUAL", "0"), ("zero", "EQUAL", "-0"), ("zero", "IN", "0"),
            ("zero", "IN", "-0"),
            ("f", "EQUAL", "\uff11.\uff15"), ("f", "EQUAL", "1.5e0"), ("f", "EQUAL", " 1.5\n"),
            ("f", "EQUAL", "1_.5"), ("f", "EQUAL", "1._5"), ("f", "EQUAL", ".15e1"), ("f", "EQUAL", "15e-1"),
            ("f", "EQUAL", "1.5_0"), ("f", "EQUAL", "0_1.5"), ("f", "EQUAL", "15E-0_1"), ("f", "EQUAL", "15e_1"),
            ("f", "LESS_THAN", "inf"), ("f", "LESS_THAN", "Infinity"), ("f", "LESS_THAN", "iNfInItY"),
            ("f", "GREATER_THAN", "-inf"), ("f", "NOT_EQUAL", "nan"), ("f", "EQUAL", "nan"),
            ("f", "LESS_THAN", "+inf"), ("f", "LESS_THAN", "infinit"), ("f", "LESS_THAN", "in f"),
            ("f", "EQUAL", "0x1.8p0"), ("f", "EQUAL", "1.5f"), ("f", "EQUAL", "1,5"), ("f", "EQUAL", "3/2"),
            ("f", "EQUAL", "1.50000000000000001"), ("f", "GREATER_THAN", "1e-400"), ("f", "LESS_THAN", "1e400"),
            ("f", "EQUAL", "1.5\x00"), ("f", "EQUAL", "True"), ("f", "EQUAL", ""), ("f", "EQUAL", "5."),
            ("fj", "EQUAL", "1.5"), ("fj", "GREATER_THAN", "1"), ("e", "EQUAL", "100"), ("e", "EQUAL", "1e2"),
            ("e", "IN", "100"), ("e", "IN", "100.0"), ("fz", "EQUAL", "0"), ("fz", "LESS_THAN", "0"),
            ("tiny", "EQUAL", "0.10000000000000001"), ("tiny", "EQUAL", "0.1000000000000001"),
            ("s", "LESS_THAN", "abd"), ("s", "GREATER_THAN", "ABC"), ("s", "EQUAL", " abc"),
            ("s", "LESS_THAN", "\u00e9"), ("s", "CONTAINS", "b"), ("s", "CONTAINS", ""),
            ("nanstr", "EQUAL", "nan"), ("nanstr", "IN", "nan"), ("infstr", "EQUAL", "inf"),
            ("nanstr", "MODULO", "2|0"), ("f", "MODULO", "1|0.5"), ("i", "CONTAINS", "1"),
        ],
    },
    # booleans: in comparisons the value is True unless "False"/"false"; in MODULO they are 1 and 0
    "bools": {
        "traits": {"t": "@RAW:true", "f": "@RAW:false", "tstr": "True"},
        "conds": [
            ("t", "MODULO", "2|1"), ("t", "MODULO", "2|0"), ("f", "MODULO", "2|0"), ("f", "MODULO", "2|1"),
            ("t", "MODULO", "1|0"), ("t", "MODULO", "0.5|0"), ("t", "MODULO", "-2|-1"), ("f", "MODULO", "-3|0"),
            ("t", "MODULO", "3|1.0"), ("t", "MODULO", "True|1"),
            ("t", "EQUAL", "true"), ("t", "EQUAL", "True"), ("t", "EQUAL", "1"), ("t", "EQUAL", "0"),
            ("t", "EQUAL", "false"), ("t", "EQUAL", "FALSE"), ("t", "EQUAL", ""), ("t", "NOT_EQUAL", "False"),
            ("t", "GREATER_THAN", "false"), ("t", "GREATER_THAN", "true"), ("t", "GREATER_THAN_INCLUSIVE", "x"),
            ("t", "LESS_THAN", "false"), ("t", "LESS_THAN_INCLUSIVE", "yes"),
            ("f", "EQUAL", "false"), ("f", "EQUAL", "False"), ("f", "EQUAL", "0"), ("f", "LESS_THAN", "yes"),
            ("f", "LESS_THAN", "False"), ("f", "GREATER_THAN_INCLUSIVE", "false"), ("f", "NOT_EQUAL", "no"),
            ("t", "CONTAINS", "t"), ("t", "NOT_CONTAINS", "x"), ("t", "IN", "True,true,1"),
            ("t", "IN", '["True", true, 1]'), ("tstr", "IN", "[true]"), ("f", "IN", "False"),
            ("t", "REGEX", "Tr"), ("f", "REGEX", "F"), ("t", "REGEX", "t"), ("t", "REGEX", "1"),
            ("t", "EQUAL", "1.0:semver"), ("t", "PERCENTAGE_SPLIT", "50"), ("f", "PERCENTAGE_SPLIT", "50"),
            ("tstr", "EQUAL", "true"), ("tstr", "MODULO", "2|1"),
        ],
    },
    # MODULO: Python's float() on both parts, floored modulo of floats
    "modulo": {
        "traits": {"i": "7", "neg": "-7", "f": "7.5", "z": "0", "fj": "@RAW:7.0", "s": "7a"},
        "conds": [
            ("i", "MODULO", "2|1"), ("i", "MODULO", " 2 | 1 "), ("i", "MODULO", "2_0|7"), ("i", "MODULO", "0x2|1"),
            ("i", "MODULO", "inf|7"), ("neg", "MODULO", "inf|inf"), ("neg", "MODULO", "inf|-7"),
            ("i", "MODULO", "-inf|-inf"), ("i", "MODULO", "nan|nan"), ("i", "MODULO", "2|1|0"),
            ("i", "MODULO", "2"), ("i", "MODULO", "|1"), ("i", "MODULO", "2|"), ("i", "MODULO", "\uff12|\uff11"),
            ("neg", "MODULO", "3|2"), ("neg", "MODULO", "3|-1"), ("i", "MODULO", "-3|-2"), ("i", "MODULO", "-3|1"),
            ("f", "MODULO", "2|1.5"), ("f", "MODULO", "2.5|0"), ("f", "MODULO", "0.1|0"), ("f", "MODULO", "2|1.50"),
            ("z", "MODULO", "-3|0"), ("z", "MODULO", "-3|-0"), ("z", "MODULO", "3|-0.0"),
            ("fj", "MODULO", "2|1"), ("fj", "MODULO", "7|0"), ("s", "MODULO", "2|1"),
            ("i", "MODULO", "2e0|1e0"), ("i", "MODULO", "1e400|7"), ("i", "MODULO", "Infinity|7"),
            ("i", "MODULO", "2|nan"), ("i", "MODULO", "2 |1"), ("i", "MODULO", "2||1"),
        ],
    },
    # IN: JSON arrays read as Python's json.loads reads them, else comma split
    "in": {
        "traits": {"n": "2", "sp": " [1", "nan": "nan", "inf": "inf", "ninf": "-inf", "d": "{'b': 1, 'a': 2}",
                   "T": "True", "N": "None", "a": " a", "br": "[1", "empty": "", "big": BIG, "l": "[1, 'x']",
                   "fl": "1.0", "e": "100.0", "neg0": "0", "q": 'x"y', "u": "\u00e9"},
        "conds": [
            ("n", "IN", " [1,2]"), ("sp", "IN", " [1,2]"), ("n", "IN", "[1,2]"), ("n", "IN", "[1, 2]\n"),
            ("n", "IN", "[1,2] x"), ("nan", "IN", "[NaN, Infinity]"), ("inf", "IN", "[NaN, Infinity]"),
            ("ninf", "IN", "[-Infinity]"), ("inf", "IN", "[1e400]"), ("d", "IN", '[{"b": 1, "a": 2}]'),
            ("d", "IN", '[{"a": 2, "b": 1}]'), ("T", "IN", "[true, null]"), ("N", "IN", "[true, null]"),
            ("a", "IN", '[" a"]'), ("br", "IN", "[1, 2"), ("empty", "IN", "[]"), ("empty", "IN", "a,,b"),
            ("empty", "IN", ""), ("big", "IN", "[" + BIG + "]"), ("l", "IN", '[[1, "x"]]'),
            ("fl", "IN", "[1.0]"), ("e", "IN", "[1E2]"), ("neg0", "IN", "[-0]"), ("n", "IN", "[2.0]"),
            ("q", "IN", '["x\\"y"]'), ("u", "IN", '["\\u00e9"]'), ("n", "IN", "[\t2\r]"), ("n", "IN", "[02]"),
            ("n", "IN", "[2,]"), ("n", "IN", "['2']"), ("d", "IN", '[{"b": 1, "a": 2, "b": 3}]'),
            ("n", "IN", "2 ,3"), ("n", "IN", " 2,3"), ("nan", "IN", "[NaN]x"), ("n", "IN", "[\u00a02]"),
        ],
    },
    # :semver as python-semver 3.0.4 parses (\d is any Unicode digit, $ allows a final newline)
    "semver": {
        "traits": {"nl": "1.2.3\n", "nl2": "1.2.3\n\n", "ud": "1\u0662.0.0", "pre": "1.0.0-1\u0660", "prea": "1.0.0-\u0663a",
                   "plain": "1.2.3", "build": "1.2.3+build.7", "alpha": "1.0.0-alpha", "lead": "01.0.0",
                   "rc": "1.0.0-rc.1", "sp": " 1.2.3", "v": "v1.2.3", "ud0": "\u0661.0.0"},
        "conds": [
            ("nl", "GREATER_THAN", "1.0.0:semver"), ("nl", "EQUAL", "1.2.3:semver"), ("nl2", "EQUAL", "1.2.3:semver"),
            ("plain", "EQUAL", "1.2.3\n:semver"), ("plain", "EQUAL", "1.2.3\n\n:semver"),
            ("ud", "GREATER_THAN", "11.0.0:semver"), ("ud", "EQUAL", "12.0.0:semver"), ("plain", "LESS_THAN", "1\u0662.0.0:semver"),
            ("pre", "GREATER_THAN", "1.0.0-9:semver"), ("pre", "EQUAL", "1.0.0-10:semver"),
            ("prea", "GREATER_THAN", "1.0.0-3:semver"), ("prea", "LESS_THAN", "1.0.0-a:semver"),
            ("build", "EQUAL", "1.2.3:semver"), ("build", "EQUAL", "1.2.3+other:semver"),
            ("alpha", "LESS_THAN", "1.0.0:semver"), ("alpha", "LESS_THAN", "1.0.0-beta:semver"),
            ("rc", "GREATER_THAN", "1.0.0-rc:semver"), ("rc", "LESS_THAN", "1.0.0-rc.a:semver"),
            ("lead", "EQUAL", "1.0.0:semver"), ("lead", "NOT_EQUAL", "1.0.0:semver"), ("sp", "EQUAL", "1.2.3:semver"),
            ("v", "EQUAL", "1.2.3:semver"), ("plain", "EQUAL", "1.2:semver"), ("plain", "NOT_EQUAL", "x:semver"),
            ("ud0", "EQUAL", "1.0.0:semver"), ("plain", "CONTAINS", "1.2.3:semver"), ("plain", "IN", "1.2.3:semver"),
            ("plain", "EQUAL", "1.2.3"), ("plain", "GREATER_THAN", "1.10.0"), ("plain", "LESS_THAN", "1.10.0:semver"),
        ],
    },
    # REGEX as Python's re.match reads it (patterns that validate accepts)
    "regex": {
        "traits": {"nl": "abc\n", "ar": "\u0661\u0662", "e": "\u00e9t\u00e9", "sp": "\u3000x", "fs": "\x1cx",
                   "aab": "aab", "lit": "a{,2}b", "n": "@RAW:42", "f": "@RAW:1.5", "t": "@RAW:true", "big": BIG,
                   "nl2": "abc\n\n", "mid": "ab\nc", "under": "_x", "nbsp": "\u00a0"},
        "conds": [
            ("nl", "REGEX", "abc$"), ("nl2", "REGEX", "abc$"), ("nl", "REGEX", "abc\\Z"), ("nl", "REGEX", "abc\\n$"),
            ("mid", "REGEX", "ab$"), ("mid", "REGEX", "(?m)ab$"), ("nl", "REGEX", "abc$|x"), ("nl", "REGEX", "(abc$)"),
            ("ar", "REGEX", "\\d+$"), ("ar", "REGEX", "[\\d]{2}"), ("ar", "REGEX", "\\D"), ("ar", "REGEX", "\\w\\w"),
            ("e", "REGEX", "\\w+$"), ("e", "REGEX", "[\\w]+$"), ("e", "REGEX", "\\W"), ("e", "REGEX", "[^\\w]"),
            ("sp", "REGEX", "\\sx"), ("sp", "REGEX", "[\\s]x"), ("sp", "REGEX", "\\S"), ("fs", "REGEX", "\\s"),
            ("nbsp", "REGEX", "\\s"), ("under", "REGEX", "\\w"),
            ("aab", "REGEX", "a{,2}b"), ("lit", "REGEX", "a{,2}b"), ("aab", "REGEX", "a{1,}b"), ("lit", "REGEX", "a\\{,2\\}b"),
            ("e", "REGEX", "\\u00e9"), ("e", "REGEX", "\\U000000e9t"), ("e", "REGEX", "[\\u00e0-\\u00ff]"),
            ("n", "REGEX", "4"), ("n", "REGEX", "2"), ("f", "REGEX", "1\\.5$"), ("t", "REGEX", "True$"),
            ("big", "REGEX", "\\d{30}$"), ("aab", "REGEX", "(?i)AAB"), ("aab", "REGEX", "(?i:A)AB"), ("aab", "REGEX", "b"),
            ("aab", "REGEX", "\\Aa"), ("e", "REGEX", "\\xe9"), ("aab", "REGEX", "[]a]+b"),
        ],
    },
}

# Conditions that `gitflags validate` accepts, as a repository writes them (the
# IN lists as arrays): TestRepoConditions loads each from a repository and
# checks that the evaluator matches what the engine answers here.
REPO = {
    "traits": {"n": "@RAW:7", "neg": "@RAW:-7", "t": "@RAW:true", "f": "@RAW:7.5", "s": "x", "big": BIG,
               "v": "1.2.3\n", "ar": "\u0661\u0662", "nl": "abc\n", "e": "\u00e9t\u00e9", "nan": "nan", "z": "0"},
    "conds": [
        ("n", "MODULO", "2|1"), ("n", "MODULO", " 2 | 1 "), ("n", "MODULO", "2_0|7"), ("n", "MODULO", "\uff12|\uff11"),
        ("t", "MODULO", "2|1"), ("n", "MODULO", "-3|-2"), ("neg", "MODULO", "3|2"), ("f", "MODULO", "2|1.5"),
        ("s", "PERCENTAGE_SPLIT", "50"), ("s", "PERCENTAGE_SPLIT", " 1_0 "), ("s", "PERCENTAGE_SPLIT", "100"),
        ("s", "PERCENTAGE_SPLIT", "0"), ("", "PERCENTAGE_SPLIT", "\uff15\uff10"), ("", "PERCENTAGE_SPLIT", "99.9"),
        ("big", "EQUAL", BIG), ("big", "EQUAL", "123456789012345678901234567891"), ("big", "LESS_THAN", "1" * 31),
        ("n", "EQUAL", "\uff17"), ("n", "GREATER_THAN", " 6 "), ("f", "EQUAL", "7.5_0"), ("t", "EQUAL", "0"),
        ("v", "EQUAL", "1.2.3:semver"), ("v", "GREATER_THAN", "1\u0660.0.0:semver"), ("s", "EQUAL", "1.0.0:semver"),
        ("n", "IN", ["a", 7]), ("z", "IN", [-0]), ("nan", "IN", "[NaN]"), ("n", "IN", " [1,7]"), ("n", "IN", "1,7"),
        ("big", "IN", [int(BIG)]), ("s", "IN", []),
        ("nl", "REGEX", "abc$"), ("ar", "REGEX", "\\d+"), ("e", "REGEX", "\\w+$"), ("s", "REGEX", "x{,2}$"),
        ("nl", "REGEX", "(?m)abc$"), ("e", "REGEX", "\\u00e9"),
    ],
}

WEIGHTS = ["60.0", "1E2", "100", "100.000", "1e2", "100.0000000000000001", "99.99", "0.0", BIG, "33.30", "-0.0", "1e-7"]


def raw(x):
    return "@RAW:" + x


def context(name, spec):
    segs = {}
    for i, (prop, op, val) in enumerate(spec["conds"]):
        key = str(i + 1)
        segs[key] = {"key": key, "name": f"{i + 1:03d} {prop} {op} {val!r}"[:200],
                     "rules": [{"type": "ALL", "conditions": [{"property": prop, "operator": op, "value": val}]}]}
    return {
        "environment": {"key": "edges", "name": name},
        "identity": {"identifier": "user", "key": "edges_user", "traits": spec["traits"]},
        "features": {"f": {"key": "1", "name": "f", "enabled": True, "value": "v"}},
        "segments": segs,
    }


def repo_context():
    ctx = context("repo", REPO)
    ctx["environment"]["key"] = "prod_client_key"
    del ctx["identity"]["key"]
    for seg in ctx["segments"].values():
        seg["key"] = "20"
    return ctx


def weights_context():
    feats = {}
    for i, w in enumerate(WEIGHTS):
        n = f"w{i}"
        feats[n] = {"key": str(i + 1), "name": n, "enabled": True, "value": "control",
                    "variants": [{"value": "a", "weight": raw(w), "priority": 1, "key": "a"},
                                 {"value": "b", "weight": 100, "priority": 2, "key": "b"}]}
    return {
        "environment": {"key": "edges", "name": "weights"},
        "identity": {"identifier": "user", "key": "edges_user"},
        "features": feats,
    }


def dump(ctx):
    text = json.dumps({"context": ctx, "result": None}, indent=2, ensure_ascii=False)
    return re.sub(r'"@RAW:([^"]*)"', r"\1", text)


def main():
    engine = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in CASES.items():
            with open(os.path.join(tmp, name + ".json"), "w") as f:
                f.write(dump(context(name, spec)))
        with open(os.path.join(tmp, "repo-conditions.json"), "w") as f:
            f.write(dump(repo_context()))
        with open(os.path.join(tmp, "weights.json"), "w") as f:
            f.write(dump(weights_context()))
        subprocess.run([sys.executable, os.path.join(engine, "oracle.py"), "fill", tmp, HERE], check=True)


if __name__ == "__main__":
    main()
