"""Compare a freshly generated set of golden vectors with a reference set (tests/golden).

    python compare.py NEW_DIR REF_DIR

Every data file of REF_DIR (CARs, JSON, orders; not README.md or gen/) must exist in NEW_DIR
with the same bytes, and NEW_DIR must hold no data file that REF_DIR lacks. One exception:
the encrypted Zarr case (`zarr_encrypted`) draws a random nonce per value, so its CAR, root,
CAR digest and value CIDs differ on every run; everything else recorded about it (keys,
decrypted metadata, sha256 of every decrypted chunk, stored lengths, block counts) must match.
`bench_results.json` is not compared: it is the recorded output of py-hamt's baseline benchmark
(scripts/bench_pyhamt.py all; timings differ on every run), kept for the roots the tests check.
Prints every case root side by side and exits non-zero on any difference.
"""

from __future__ import annotations

import json
import os
import sys

RANDOM_CASE = "zarr_encrypted"
RANDOM_FIELDS = ("root", "car_sha256", "value_cids")
RANDOM_FILES = {os.path.join("cars", RANDOM_CASE + ".car")}
JSON_WITH_RANDOM = "zarr_cases.json"
NOT_GENERATED = {"bench_results.json"}


def data_files(top: str) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in ("gen", "__pycache__")]
        for name in filenames:
            if name.endswith((".car", ".json")) and name not in NOT_GENERATED:
                out.add(os.path.relpath(os.path.join(dirpath, name), top))
    return out


def roots(top: str) -> dict[str, str]:
    """Case name -> root CID, from cases.json, zarr_cases.json and sharded/sharded_cases.json."""
    found = {}
    for rel in ("cases.json", "zarr_cases.json", os.path.join("sharded", "sharded_cases.json")):
        path = os.path.join(top, rel)
        if os.path.exists(path):
            with open(path) as f:
                for case in json.load(f)["cases"]:
                    found[f"{rel}:{case['name']}"] = case["root"]
    return found


def without_random(doc: dict) -> dict:
    for case in doc["cases"]:
        if case["name"] == RANDOM_CASE:
            for field in RANDOM_FIELDS:
                case.pop(field, None)
    return doc


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    new, ref = sys.argv[1], sys.argv[2]
    problems = []

    new_files, ref_files = data_files(new), data_files(ref)
    if not ref_files:
        problems.append(f"no golden data files under {ref}")
    for rel in sorted(ref_files - new_files):
        problems.append(f"missing from the regenerated set: {rel}")
    for rel in sorted(new_files - ref_files):
        problems.append(f"not in {ref}: {rel}")
    same = 0
    for rel in sorted(ref_files & new_files):
        if rel in RANDOM_FILES:
            continue
        with open(os.path.join(new, rel), "rb") as f:
            a = f.read()
        with open(os.path.join(ref, rel), "rb") as f:
            b = f.read()
        if a == b:
            same += 1
            continue
        if rel == JSON_WITH_RANDOM and without_random(json.loads(a)) == without_random(json.loads(b)):
            same += 1
            continue
        problems.append(f"differs: {rel}")

    new_roots, ref_roots = roots(new), roots(ref)
    equal_roots = 0
    for name in sorted(ref_roots):
        got, want = new_roots.get(name), ref_roots[name]
        if got == want:
            equal_roots += 1
            mark = "="
        elif name.endswith(":" + RANDOM_CASE):
            mark = "~"  # random nonces: a new root every run, by design
        else:
            mark = "!"
            problems.append(f"root of {name}: {got} (expected {want})")
        print(f"{mark} {name:55} {want}")

    random_roots = sum(1 for n in ref_roots if n.endswith(":" + RANDOM_CASE))
    print(
        f"{equal_roots} of {len(ref_roots)} roots equal ({random_roots} random by design: "
        f"{RANDOM_CASE}); {same} of {len(ref_files - RANDOM_FILES)} deterministic files byte-identical"
    )
    for p in problems:
        print("golden mismatch:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
