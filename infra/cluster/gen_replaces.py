"""Generate the `replace` block that lets an outside module depend on k8s.io/kubernetes.

k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/apiserver, …) at the
placeholder version v0.0.0 and points them at `./staging/src/...` with `replace` lines that only
work inside its own repository. A module that imports it must replace each of them with the
published tag `v0.<minor>.<patch>`. This script reads the `.mod` file the Go module proxy serves
(via `go mod download -json`, so GOPROXY/GOFLAGS are honoured) and rewrites the block between the
markers in infra/cluster/go/go.mod, so the list is never maintained by hand.

Usage: python3 infra/cluster/gen_replaces.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

GO_MOD = Path(__file__).resolve().parent / "go" / "go.mod"
BEGIN = "// BEGIN generated staging replaces (infra/cluster/gen_replaces.py)"
END = "// END generated staging replaces"
_STAGING = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/src/", re.MULTILINE)
_REQUIRE = re.compile(r"^\s*k8s\.io/kubernetes\s+(v[\w.+-]+)", re.MULTILINE)


def staging_modules(kubernetes_mod: str) -> list[str]:
    """Module paths that k8s.io/kubernetes replaces with a directory of its own repository."""
    return sorted(set(_STAGING.findall(kubernetes_mod)))


def staging_version(kubernetes_version: str) -> str:
    """Staging modules are tagged v0.X.Y for Kubernetes v1.X.Y."""
    match = re.fullmatch(r"v1\.(\d+\.\d+(?:-[\w.]+)?)", kubernetes_version)
    if match is None:
        raise ValueError(f"not a Kubernetes release version: {kubernetes_version}")
    return f"v0.{match.group(1)}"


def render_block(modules: list[str], version: str) -> str:
    """The replace block, between its markers, ready to splice into go.mod."""
    lines = [BEGIN, "replace ("]
    lines += [f"\t{module} => {module} {version}" for module in modules]
    # go mod tidy puts a blank line between a block and a following comment; match it so that
    # `--check` is stable after tidy.
    lines += [")", "", END]
    return "\n".join(lines)


def splice(go_mod: str, block: str) -> str:
    """Replace the marked block in go.mod text, or append it when absent."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if pattern.search(go_mod):
        return pattern.sub(lambda _: block, go_mod)
    return go_mod.rstrip("\n") + "\n\n" + block + "\n"


def download_mod(version: str) -> str:
    """The go.mod of k8s.io/kubernetes@version as the module proxy serves it."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(json.loads(out)["GoMod"]).read_text()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if go.mod is out of date")
    args = parser.parse_args()
    current = GO_MOD.read_text()
    required = _REQUIRE.search(current)
    if required is None:
        print("go.mod does not require k8s.io/kubernetes", file=sys.stderr)
        return 2
    version = required.group(1)
    modules = staging_modules(download_mod(version))
    updated = splice(current, render_block(modules, staging_version(version)))
    if args.check:
        if updated != current:
            print("go.mod replaces are stale; run gen_replaces.py", file=sys.stderr)
            return 1
        return 0
    GO_MOD.write_text(updated)
    print(f"{len(modules)} staging replaces for k8s.io/kubernetes {version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
