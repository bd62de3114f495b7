"""A loopback stand-in for the two GitHub REST API endpoints the audit's query calls (src/mlsec_actions/audit_query.py).

GitHub's API cannot be reached from here, so this serves the response shapes GitHub documents:
- `GET /orgs/{org}/repos?type=&sort=&direction=&per_page=&page=`: a JSON array of repository objects
  (`full_name`, `name`, `owner.login`, `private`, `archived`, `disabled`, `fork`, `topics`, ...), pages cut by
  `per_page`/`page`, a `Link` header as GitHub sends it; 404 `{"message": "Not Found"}` for an unknown org;
- `GET /search/repositories?q=&per_page=&page=`: `{"total_count", "incomplete_results", "items"}`, the query's
  `org:` and `topic:` qualifiers applied, forks left out (GitHub's default);
- 401 `{"message": "Bad credentials"}` for a token other than the expected one.
Every request is recorded (path, query, Authorization). `answer[path] = (status, headers, body)` replaces one
path's answer with anything (a 5xx, a rate limit, a body that is not JSON).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from tests.oidc_issuer import JsonHandler

TOKEN = "ghs_standInJobToken0123456789"
PREFIX = "/api/v3"


def repo(full_name: str, *, topics: tuple[str, ...] = (), archived: bool = False, fork: bool = False,
         disabled: bool = False, **extra: Any) -> dict[str, Any]:
    """A repository object with the fields GitHub documents (a subset of its ~90)."""
    owner, _, name = full_name.partition("/")
    return {"id": abs(hash(full_name)) % 10 ** 9, "node_id": "R_x", "name": name, "full_name": full_name,
            "private": False, "owner": {"login": owner, "type": "Organization"},
            "html_url": f"https://github.com/{full_name}", "description": None, "fork": fork,
            "url": f"https://api.github.com/repos/{full_name}", "default_branch": "main", "archived": archived,
            "disabled": disabled, "visibility": "public", "topics": list(topics), **extra}


@dataclass
class ApiServer:
    base: str
    repos: dict[str, list[Any]] = field(default_factory=dict)
    """org (lower case) -> its repository objects, in the order GitHub would list them."""
    answer: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    token: str = TOKEN


def _page(items: list[Any], query: dict[str, list[str]]) -> tuple[list[Any], int, int]:
    per = int(query.get("per_page", ["30"])[0])
    page = int(query.get("page", ["1"])[0])
    return items[(page - 1) * per:page * per], page, -(-len(items) // per)


def _handler(api: ApiServer) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            parts = parts._replace(path=parts.path.removeprefix(PREFIX))  # GHES's base: https://HOST/api/v3
            query = urllib.parse.parse_qs(parts.query)
            api.requests.append({"path": parts.path, "query": parts.query,
                                 "authorization": self.headers.get("Authorization", ""),
                                 "accept": self.headers.get("Accept", "")})
            if parts.path in api.answer:
                status, headers, body = api.answer[parts.path]
                self.send_response(status)
                for k, v in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                return
            if api.token and self.headers.get("Authorization", "") != f"Bearer {api.token}":
                self._json(401, {"message": "Bad credentials"})
                return
            segments = parts.path.strip("/").split("/")
            if len(segments) == 3 and segments[0] == "orgs" and segments[2] == "repos":
                org = segments[1].lower()
                if org not in api.repos:
                    self._json(404, {"message": "Not Found"})
                    return
                items, page, last = _page(api.repos[org], query)
                self._json(200, items, page < last and f'<{api.base}{parts.path}?page={page + 1}>; rel="next"')
            elif parts.path == "/search/repositories":
                words = query.get("q", [""])[0].split()
                orgs = [w[4:].lower() for w in words if w.startswith("org:")]
                topics = [w[6:] for w in words if w.startswith("topic:")]
                every = [r for org, rs in api.repos.items() if not orgs or org in orgs for r in rs
                         if isinstance(r, dict) and not r.get("fork")
                         and all(t in r.get("topics", []) for t in topics)]
                items, _, _ = _page(every, query)
                self._json(200, {"total_count": len(every), "incomplete_results": False, "items": items})
            else:
                self._json(404, {"message": "Not Found"})

        def _json(self, status: int, doc: object, link: str | bool = False) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-RateLimit-Remaining", "4999")
            if link:
                self.send_header("Link", str(link))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def serve() -> Iterator[ApiServer]:
    """Start the stand-in on a free loopback port (a generator for a pytest fixture)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), JsonHandler)
    api = ApiServer(f"http://127.0.0.1:{server.server_address[1]}{PREFIX}")
    server.RequestHandlerClass = _handler(api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
