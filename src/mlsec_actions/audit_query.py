"""An org-wide audit's repositories from a query (docs/audit.md#query): every repository of an organisation
(`GET /orgs/{org}/repos`), or those carrying a topic (`GET /search/repositories?q=org:ORG topic:TOPIC`), asked
of GitHub's REST API at `GITHUB_API_URL` (GHES works) with the job's own token.

Everything the API answers is hostile input. A name that breaks GitHub's rules (`audit.is_repository`), of
another owner than the one asked about, or whose results name another already holds, is refused with a note
and the rest are audited; archived, disabled and forked repositories are skipped with a note. What cannot be
trusted as a whole (a status other than 200, a rate limit, a redirect, an answer that is not JSON or not the
documented shape, a search GitHub says is incomplete or over its 1,000 results, more pages than the bound) is a
UsageError, exit 2 with one line: an audit never runs on a list it could not read whole.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlsec_actions import sanitize
from mlsec_actions.audit import MAX_JOBS, Target, is_repository
from mlsec_actions.errors import UsageError
from mlsec_actions.notify.http import Client, check_url, host_of
from mlsec_actions.notify.model import NotifyFailed

DEFAULT_API = "https://api.github.com"
API_VERSION = "2022-11-28"
PER_PAGE = 100
MAX_PAGES = 100
"""Pages per query: 10,000 repositories of one organisation (search stops at 1,000 anyway)."""
MAX_SEARCH_RESULTS = 1000
"""GitHub's search returns at most this many results for one query."""
MAX_ORGS = MAX_TOPICS = 20
MAX_ANSWER_BYTES = 16 * 1024 * 1024
BUDGET_SECONDS = 300.0
_TOPIC = re.compile(r"[a-z0-9][a-z0-9-]{0,49}")
_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Query:
    orgs: tuple[str, ...]
    topics: tuple[str, ...]

    def searches(self) -> list[tuple[str, str]]:
        """(org, topic) pairs; an empty side is "any". Without a topic, an org is listed, not searched."""
        return [(o, t) for o in (self.orgs or ("",)) for t in (self.topics or ("",))]


@dataclass(frozen=True)
class Found:
    targets: tuple[Target, ...]
    """Usable repositories, sorted by name (the same answer chunks the same way in every run)."""
    notes: tuple[str, ...]
    """One line per repository skipped or refused, safe to print."""


def parse_query(orgs: str, topics: str) -> Query | None:
    """`--org` and `--topic` lists (commas, spaces or lines); None when both are empty."""
    org_list = list(dict.fromkeys(o for o in _SPLIT.split(orgs) if o))
    topic_list = list(dict.fromkeys(t for t in _SPLIT.split(topics) if t))
    for org in org_list:
        if not is_repository(f"{org}/x"):  # an owner by GitHub's rules
            raise UsageError(f"--org: {sanitize.log_line(org, 80)!r} is not an organisation name")
    for topic in topic_list:
        if not _TOPIC.fullmatch(topic):
            raise UsageError(f"--topic: {sanitize.log_line(topic, 80)!r} is not a GitHub topic "
                             "(lower-case letters, digits and dashes, at most 50)")
    if len(org_list) > MAX_ORGS or len(topic_list) > MAX_TOPICS:
        raise UsageError(f"--org, --topic: at most {MAX_ORGS} organisations and {MAX_TOPICS} topics")
    return Query(tuple(org_list), tuple(topic_list)) if org_list or topic_list else None


def api_base(env: Mapping[str, str]) -> str:
    """`GITHUB_API_URL` (GitHub Enterprise Server's `https://HOST/api/v3`), or api.github.com: https, or http to a
    loopback host only (a local stand-in), never with credentials, a query or a fragment."""
    base = env.get("GITHUB_API_URL", "").strip() or DEFAULT_API
    check_url(base, "GITHUB_API_URL")
    if urllib.parse.urlsplit(base).query:
        raise UsageError("GITHUB_API_URL: a query in the API's base URL")
    return base.rstrip("/")


def resolve(query: Query, base: str, token: str, client: Client | None = None,
            listed: Sequence[Target] = ()) -> Found:
    """Every repository the query names that `listed` does not already hold, with notes for what was left out
    (also one sharing a listed one's results name); UsageError when the answer as a whole cannot be trusted
    (module docstring)."""
    client = client or Client(budget=BUDGET_SECONDS, retries=2, secrets=(token,),
                              max_response_bytes=MAX_ANSWER_BYTES)
    found: dict[str, Target] = {}
    notes: list[str] = []
    for org, topic in query.searches():
        for item in _items(client, base, token, org, topic):
            target, note = _judge(item, org, topic)
            if target is None:
                notes.append(note)
            elif target.repository not in found:  # the same repository from two (org, topic) pairs: once
                found[target.repository] = target
    slots = {t.slot: t.label for t in listed}
    kept: list[Target] = []
    for target in sorted(found.values(), key=lambda t: (t.repository.lower(), t.repository)):
        if target in listed:
            continue
        if target.slot in slots:
            notes.append(f"{target.repository}: refused, it shares the results name {target.slot} with "
                         f"{slots[target.slot]} (names differ only in case)")
            continue
        slots[target.slot] = target.label
        kept.append(target)
    return Found(tuple(kept), tuple(notes))


def _judge(item: Any, org: str, topic: str) -> tuple[Target | None, str]:
    """The target of one answered repository, or None and the note saying why it is left out."""
    if not isinstance(item, dict):
        return None, "an answer's entry that is not a repository object: refused"
    name = item.get("full_name")
    if not isinstance(name, str) or not is_repository(name):
        return None, f"{sanitize.log_line(repr(name), 120)}: refused, not owner/name by GitHub's rules"
    if org and name.partition("/")[0].lower() != org.lower():
        return None, f"{name}: refused, the query asked for the repositories of {org}"
    topics = item.get("topics")
    if topic and isinstance(topics, list) and topic not in topics:
        return None, f"{name}: refused, the search answered it but it does not carry the topic {topic}"
    for flag, why in (("archived", "archived"), ("disabled", "disabled"), ("fork", "a fork")):
        value = item.get(flag)
        if value is True:
            return None, f"{name}: skipped ({why})"
        if value not in (False, None):
            return None, f"{name}: refused, {flag!r} is not true or false"
    return Target(name), ""


def _items(client: Client, base: str, token: str, org: str, topic: str) -> Iterator[Any]:
    """Every entry of one listing or search, page by page (pages counted, never a URL from the answer)."""
    what = f"search {'org:' + org + ' ' if org else ''}topic:{topic}" if topic else f"the repositories of {org}"
    seen = 0
    for page in range(1, MAX_PAGES + 1):
        if topic:
            q = " ".join(([f"org:{org}"] if org else []) + [f"topic:{topic}"])
            url = f"{base}/search/repositories?" + urllib.parse.urlencode(
                {"q": q, "per_page": PER_PAGE, "page": page})
            doc = _get(client, url, token, what)
            if not (isinstance(doc, dict) and isinstance(doc.get("items"), list)
                    and type(doc.get("total_count")) is int and isinstance(doc.get("incomplete_results"), bool)):
                raise UsageError(f"{what}: {host_of(base)} answered JSON that is not a search result "
                                 "({total_count, incomplete_results, items})")
            if doc["incomplete_results"]:
                raise UsageError(f"{what}: GitHub says the search results are incomplete (it timed out); "
                                 "the list may miss repositories, run the audit again")
            total = doc["total_count"]
            if total > MAX_SEARCH_RESULTS:
                raise UsageError(f"{what}: {total} repositories match, and GitHub's search returns at most "
                                 f"{MAX_SEARCH_RESULTS}: narrow it (one organisation per query, another topic)")
            items: list[Any] = doc["items"]
        else:
            url = f"{base}/orgs/{org}/repos?" + urllib.parse.urlencode(
                {"type": "all", "sort": "full_name", "direction": "asc", "per_page": PER_PAGE, "page": page})
            doc = _get(client, url, token, what)
            if not isinstance(doc, list):
                raise UsageError(f"{what}: {host_of(base)} answered JSON that is not a list of repositories")
            items, total = doc, -1
        if len(items) > PER_PAGE:
            raise UsageError(f"{what}: page {page} holds {len(items)} entries, more than the {PER_PAGE} asked for")
        yield from items
        seen += len(items)
        if len(items) < PER_PAGE or 0 <= total <= seen:  # a search past its own total_count is not read on
            return
    raise UsageError(f"{what}: more than {MAX_PAGES * PER_PAGE} repositories ({MAX_PAGES} pages); audit at "
                     f"most {MAX_JOBS} per run with chunks, and narrow the query with a topic")


def _get(client: Client, url: str, token: str, what: str) -> Any:
    """One GET as JSON; every answer but a 200 with JSON is a UsageError naming the host and the reason."""
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    host = host_of(url)
    try:
        got = client.request(what, "GET", url, headers=headers, ok=range(100, 600))
    except NotifyFailed as e:  # connection errors after the retries, a redirect, the time budget
        raise UsageError(f"GitHub API: {e}") from None
    lower = {k.lower(): v for k, v in got.headers.items()}
    if got.status in (403, 429) and (lower.get("x-ratelimit-remaining") == "0" or "retry-after" in lower):
        raise UsageError(f"{what}: {host} answered HTTP {got.status}, the API's rate limit{_reset(lower)}; "
                         "run the audit again later")
    if got.status != 200:
        hint = {401: " (the token was refused)", 404: " (no such organisation, or not visible to this token)",
                422: " (the query was refused)"}.get(got.status, "")
        raise UsageError(f"{what}: {host} answered HTTP {got.status}{hint}")
    if len(got.body) >= MAX_ANSWER_BYTES:
        raise UsageError(f"{what}: {host} answered more than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB for one page")
    try:
        return json.loads(got.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise UsageError(f"{what}: {host} answered HTTP 200 with a body that is not JSON") from None


def _reset(headers: Mapping[str, str]) -> str:
    retry = headers.get("retry-after", "")
    if retry.isdigit():
        return f" (retry after {int(retry)} s)"
    reset = headers.get("x-ratelimit-reset", "")
    if reset.isdigit() and int(reset) < 2 ** 40:
        return f" (resets at {datetime.fromtimestamp(int(reset), UTC):%H:%M} UTC)"
    return ""
