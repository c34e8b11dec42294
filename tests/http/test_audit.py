"""graphql-http's audit of GraphQL over HTTP (every MUST, SHOULD and MAY it checks) against a
real `billgraph serve`, with an API key. Node and the package are part of the test setup
(`npm ci --prefix tests/http/node`, which .ci/run does): without them the test fails."""

import json
import shutil
import subprocess
from pathlib import Path

from tests.support.server import create_organization, live_server

HERE = Path(__file__).parent
PACKAGE_DIR = HERE / "node"
INSTALL = f"npm ci --prefix {PACKAGE_DIR.relative_to(HERE.parent.parent)}"


def _node() -> str:
    node = shutil.which("node")
    assert node, f"node is not on PATH: the GraphQL-over-HTTP audit needs Node.js 18+ ({INSTALL})"
    installed = PACKAGE_DIR / "node_modules" / "graphql-http" / "package.json"
    assert installed.exists(), f"graphql-http is not installed in {PACKAGE_DIR}: run `{INSTALL}`"
    return node


def test_graphql_over_http_audit_passes_without_warnings(tmp_path: Path) -> None:
    node = _node()
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    api_key = create_organization(url, "Audit")["api_key"]
    with live_server(url) as server:
        done = subprocess.run(
            [
                node,
                str(HERE / "audit.mjs"),
                f"{server.base_url}/graphql",
                api_key,
                str(PACKAGE_DIR),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, f"audit.mjs failed ({done.returncode}): {done.stderr}"
    results = json.loads(done.stdout)
    assert len(results) > 50, results  # the audit ran, not an empty list
    by_status: dict[str, list[str]] = {}
    for result in results:
        by_status.setdefault(result["status"], []).append(
            f"{result['id']} {result['name']}: {result['reason']} (HTTP {result['httpStatus']})"
        )
    failing = by_status.get("error", []) + by_status.get("warn", [])
    assert not failing, (
        f"{len(by_status.get('error', []))} errors, {len(by_status.get('warn', []))} warnings:\n"
        + "\n".join(failing)
    )
