#!/usr/bin/env python3
"""The Flagsmith engine's answers for the import fixtures.

For each fixture set (a directory here holding Flagsmith environment
documents), this evaluates every identity of identities.json, and no
identity, in every document with the reference engine
(flagsmith-flag-engine 10.2.0 in ../../../shared/conformance/python-engine,
or $GITFLAGS_PYTHON_ENGINE), and writes the answers to <set>/expected.json.
The Go test (proof_test.go) imports the documents and checks that gitflags
serves exactly these answers. It does not run Python.

The document is turned into the engine's evaluation context the way
Flagsmith's Python SDK does for local evaluation (flagsmith-python-client,
mappers.map_environment_document_to_context, for engine 10.x): a feature
state's key is its django_id, else its featurestate_uuid; a variant's
priority is its multivariate value's id, else its uuid's integer, and its
key the option's key when it has one; segment overrides carry
feature_segment.priority; identity overrides become segments matching
$.identity.identifier IN [identifiers] with priority minus infinity.

It also answers <set>/exported/: the documents gitflags exports after
importing the set, which roundtrip_test.go pins (TestExportGolden) and
compares with the originals' answers.

Regenerate (after changing a document, the identities, or the import or
export), from the repository root:

    apt-get install -y python3-regex python3-typing-extensions
    go test ./flagsmithdoc -run 'TestImportReports|TestExportGolden' -update
    /usr/bin/python3 flagsmithdoc/testdata/engine_answers.py
    go test ./flagsmithdoc

then review the diff of testdata (report.txt lists what each import could
not keep). identities.json is generated from a fixed seed when it is
missing (delete it to regenerate it).
"""
import json
import os
import random
import sys
import uuid
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINE = os.environ.get(
    "GITFLAGS_PYTHON_ENGINE",
    os.path.join(HERE, "..", "..", "..", "shared", "conformance", "python-engine"),
)
sys.path[:0] = [os.path.join(ENGINE, "src"), os.path.join(ENGINE, "deps")]

from flag_engine.engine import get_evaluation_result  # noqa: E402

# The fixture sets and their documents, in the order they are imported.
SETS = {
    "single": ["production.json"],
    "multienv": ["prd.json", "stg.json", "dev.json"],
    "legacy": ["live.json"],
    "partial": ["a.json", "b.json"],
}


def feature_context(fs):
    """A feature state as the engine's feature context."""
    ctx = {
        "key": str(fs.get("django_id") or fs["featurestate_uuid"]),
        "name": fs["feature"]["name"],
        "enabled": fs["enabled"],
        "value": fs.get("feature_state_value"),
        "metadata": {"id": fs["feature"]["id"]},
    }
    mvs = fs.get("multivariate_feature_state_values") or []
    if mvs:
        variants = []
        for m in mvs:
            opt = m["multivariate_feature_option"]
            v = {
                "value": opt["value"],
                "weight": m["percentage_allocation"],
                "priority": m.get("id") or uuid.UUID(m["mv_fs_value_uuid"]).int,
            }
            if opt.get("key") is not None:
                v["key"] = opt["key"]
            variants.append(v)
        ctx["variants"] = variants
    if fs.get("feature_segment"):
        ctx["priority"] = fs["feature_segment"]["priority"]
    return ctx


def rules(rs):
    return [
        {
            "type": r["type"],
            "conditions": [
                {"property": c.get("property_") or "", "operator": c["operator"], "value": c.get("value")}
                for c in r.get("conditions", [])
            ],
            "rules": rules(r.get("rules", [])),
        }
        for r in rs
    ]


def context(doc):
    segments = {}
    for s in doc["project"]["segments"]:
        segments[str(s["id"])] = {
            "key": str(s["id"]),
            "name": s["name"],
            "rules": rules(s["rules"]),
            "overrides": [feature_context(fs) for fs in s.get("feature_states") or []],
        }
    by_overrides = defaultdict(list)
    for io in doc.get("identity_overrides") or []:
        if not io["identity_features"]:
            continue
        k = tuple(
            (fs["feature"]["id"], fs["feature"]["name"], fs["enabled"], json.dumps(fs["feature_state_value"]))
            for fs in sorted(io["identity_features"], key=lambda fs: fs["feature"]["name"])
        )
        by_overrides[k].append(io["identifier"])
    for n, (k, identifiers) in enumerate(by_overrides.items()):
        segments["identity-overrides-%d" % n] = {
            "key": "",
            "name": "identity_overrides",
            "rules": [{"type": "ALL", "conditions": [{"property": "$.identity.identifier", "operator": "IN", "value": identifiers}]}],
            "overrides": [
                {"key": "", "name": name, "enabled": enabled, "value": json.loads(value), "priority": float("-inf")}
                for _, name, enabled, value in k
            ],
        }
    return {
        "environment": {"key": doc["api_key"], "name": doc["name"]},
        "features": {fs["feature"]["name"]: feature_context(fs) for fs in doc["feature_states"]},
        "segments": segments,
    }


def answer(ctx, identity):
    c = dict(ctx)
    if identity is not None:
        c["identity"] = {"identifier": identity["identifier"], "traits": identity["traits"]}
    res = get_evaluation_result(c)
    return {
        name: {"enabled": f["enabled"], "value": f["value"], "variant": f.get("variant"), "reason": f["reason"]}
        for name, f in sorted(res["flags"].items())
    }


def make_identities(path):
    rnd = random.Random(20260302)
    domains = ["acme.example", "example.com", "corp.example", "mail.test"]
    out = []
    special = ["qa@acme.example", "ceo@acme.example", "12345", "alice", "bob", "test1@corp.example"]
    for n in range(300):
        identifier = special[n] if n < len(special) else "user%d@%s" % (n, rnd.choice(domains))
        t = {
            "email": identifier if "@" in identifier else identifier + "@" + rnd.choice(domains),
            "plan": rnd.choice(["free", "starter", "premium", "enterprise", "beta"]),
            "app_version": rnd.choice(["3.1.9", "3.2.0", "4.0.0", "2.9.9-beta", "3.2.0-rc.1"]),
            "platform": rnd.choice(["ios", "android", "web"]),
            "country": rnd.choice(["DE", "FR", "US", "GB", "NL", "ES"]),
            "orders": rnd.randint(0, 80),
            # integral floats too: a trait sent as 1818.0 is a float for
            # the engine (and for gitflags since evaluator.FloatTraits)
            "lifetime_value": rnd.randint(0, 1999) + rnd.choice([0.0, 0.25, 0.5, 0.75, 0.05]),
            "age": rnd.randint(12, 80),
            "user_id": rnd.choice([1, 2, 3, 42, 7, rnd.randint(4, 999)]),
            "tier": rnd.choice(["free", "gold", "silver"]),
            "nickname": rnd.choice(["ann", "robot", "bob", "chatbot"]),
            "score": rnd.choice([3, 7, 8, 6.5, 7.0, "5"]),
            "vip": rnd.choice([True, False, "true"]),
            "org_id": "org-%d" % rnd.randint(1, 40),
            "device": rnd.choice(["phone", "tablet"]),
        }
        if rnd.random() < 0.2:
            t["banned"] = True
        if rnd.random() < 0.3:
            t["company"] = "Initech"
        drop = rnd.sample(sorted(t), rnd.randint(0, 3))
        for k in drop:
            del t[k]
        out.append({"identifier": identifier, "traits": t})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    ids_path = os.path.join(HERE, "identities.json")
    if not os.path.exists(ids_path):
        make_identities(ids_path)
    with open(ids_path, encoding="utf-8") as f:
        identities = json.load(f)
    for name, docs in SETS.items():
        answer_set(os.path.join(HERE, name), docs, identities)
        # The documents gitflags exports after importing the set (written by
        # `go test ./flagsmithdoc -run TestExportGolden -update`).
        exported = os.path.join(HERE, name, "exported")
        if os.path.isdir(exported):
            answer_set(exported, sorted(f for f in os.listdir(exported) if f != "expected.json"), identities)


def answer_set(dir, docs, identities):
    """Write dir/expected.json: the engine's answers from the documents docs of dir."""
    out = {"documents": []}
    for d in docs:
        with open(os.path.join(dir, d), encoding="utf-8") as f:
            doc = json.load(f)
        ctx = context(doc)
        hide = doc.get("hide_disabled_flags")
        if hide is None:
            hide = doc["project"].get("hide_disabled_flags", False)
        ids = set(doc["project"].get("server_key_only_feature_ids") or [])
        out["documents"].append({
            "file": d,
            "api_key": doc["api_key"],
            "hide_disabled_flags": hide,
            "server_key_only": sorted(fs["feature"]["name"] for fs in doc["feature_states"] if fs["feature"]["id"] in ids),
            "environment": answer(ctx, None),
            "identities": {i["identifier"]: answer(ctx, i) for i in identities},
        })
    with open(os.path.join(dir, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False, sort_keys=True)
        f.write("\n")
    print("%s: %d documents x %d identities" % (os.path.relpath(dir, HERE), len(docs), len(identities)))


if __name__ == "__main__":
    main()
