"""Page latency: every analyst page over HTTP, beside the JSON API call behind it.

Fills a fresh database with `mot demo` (its defaults: 30,000 touchpoints over 180 days),
starts a real `mot serve` (1 worker), signs in as a browser does (the sign-in form's CSRF
token posted back with the key, the session kept as a cookie) and times, one request at a
time after a warm-up, each page and in the same run its references: `GET /healthz` (the
floor of a request through the service) and the `/v1` call the page is rendered from, with
the same window. The requests take turns, round after round, so that a burst of other work
on the machine hits them all alike. Prints the median and the p95 of each, side by side.

    python -m bench.pages [--requests 200] [--warmup 20] [--backends sqlite,postgresql]

The goal is every page under 100 ms at p95.
"""

import argparse
import re
import statistics
import subprocess
import time
from dataclasses import dataclass, field

import httpx

from bench.common import (
    AUTH,
    BENCH_KEY,
    DEFAULT_POSTGRES_URL,
    MOT,
    child_environment,
    fresh_database,
    running_service,
)

GOAL_MS = 100.0
DAYS = 30
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
WINDOW = re.compile(r'id="window"[^>]*data-from="([^"]+)"[^>]*data-to="([^"]+)"')
MOMENT = re.compile(r'data-moment="([^"]+)"')
FOLLOW_UP = re.compile(r'href="/ui/follow-ups/(\d+)"')


@dataclass
class Timed:
    """One request, timed over and over: a page, or a reference beside it."""

    name: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    page: bool = False
    samples: list[float] = field(default_factory=list)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _found(pattern: re.Pattern[str], text: str, what: str) -> re.Match[str]:
    found = pattern.search(text)
    if found is None:
        raise SystemExit(f"no {what} on the page")
    return found


def sign_in(browser: httpx.Client) -> None:
    """Sign in as a browser does: load the form, post it back with its CSRF token."""
    form = browser.get("/ui/sign-in")
    form.raise_for_status()
    token = _found(CSRF, form.text, "CSRF token").group(1)
    answer = browser.post(
        "/ui/sign-in", data={"key": BENCH_KEY, "csrf_token": token, "next": "/ui/"}
    )
    if answer.status_code != 303:
        raise SystemExit(f"sign-in answered {answer.status_code}: {answer.text[:200]}")


def requests_to_time(browser: httpx.Client) -> list[list[Timed]]:
    """Each page with its references, the window and the ids read from the pages themselves."""
    overview = browser.get("/ui/", params={"days": str(DAYS)})
    overview.raise_for_status()
    start, end = _found(WINDOW, overview.text, "window").groups()
    moment = _found(MOMENT, overview.text, "ranked moment").group(1)
    queue = browser.get("/ui/follow-ups")
    queue.raise_for_status()
    follow_up = _found(FOLLOW_UP, queue.text, "follow-up").group(1)
    span = {"from": start, "to": end}
    days = {"days": str(DAYS)}
    return [
        [Timed("GET /healthz", "/healthz")],
        [
            Timed("overview  /ui/", "/ui/", days, page=True),
            Timed(
                "  API /v1/insights/weak-spots", "/v1/insights/weak-spots", {**span, "limit": "500"}
            ),
            Timed("  API /v1/insights/overview", "/v1/insights/overview", span),
        ],
        [
            Timed(
                f"moment  /ui/moments/{moment}",
                f"/ui/moments/{moment}",
                {**days, "granularity": "week"},
                page=True,
            ),
            Timed(
                "  API /v1/moments/{key}/report",
                f"/v1/moments/{moment}/report",
                {**span, "granularity": "week"},
            ),
        ],
        [
            Timed("hotspots  /ui/hotspots", "/ui/hotspots", days, page=True),
            Timed("  API /v1/insights/hotspots", "/v1/insights/hotspots", span),
        ],
        [
            Timed("catalogue  /ui/moments", "/ui/moments", days, page=True),
            Timed("  API /v1/moments", "/v1/moments", {"limit": "500"}),
        ],
        [
            Timed("follow-ups  /ui/follow-ups", "/ui/follow-ups", page=True),
            Timed(
                "  API /v1/follow-ups (overdue)",
                "/v1/follow-ups",
                {"overdue": "true", "limit": "500"},
            ),
            Timed(
                "  API /v1/follow-ups (on time)",
                "/v1/follow-ups",
                {"overdue": "false", "limit": "500"},
            ),
        ],
        [
            Timed(
                f"follow-up  /ui/follow-ups/{follow_up}", f"/ui/follow-ups/{follow_up}", page=True
            ),
            Timed("  API /v1/follow-ups/{id}", f"/v1/follow-ups/{follow_up}"),
        ],
        [Timed("sign-in  /ui/sign-in", "/ui/sign-in", page=True)],
    ]


def measure(
    browser: httpx.Client, api: httpx.Client, timed: list[Timed], *, requests: int, warmup: int
) -> None:
    for round_ in range(warmup + requests):
        for item in timed:
            client = browser if item.page else api
            began = time.perf_counter()
            answer = client.get(item.path, params=item.params)
            elapsed = (time.perf_counter() - began) * 1000
            if answer.status_code != 200:
                raise SystemExit(f"{item.path} answered {answer.status_code}: {answer.text[:200]}")
            if round_ >= warmup:
                item.samples.append(elapsed)


def report(groups: list[list[Timed]]) -> None:
    print(f"{'request':<48} {'median ms':>10} {'p95 ms':>8}")
    for group in groups:
        for item in group:
            print(
                f"{item.name:<48} {statistics.median(item.samples):>10.1f} "
                f"{p95(item.samples):>8.1f}"
            )
    pages = [item for group in groups for item in group if item.page]
    slowest = max(pages, key=lambda item: p95(item.samples))
    met = all(p95(item.samples) < GOAL_MS for item in pages)
    print(
        f"goal: every page under {GOAL_MS:.0f} ms at p95: {'met' if met else 'NOT met'} "
        f"(slowest: {slowest.name.split()[0]}, p95 {p95(slowest.samples):.1f} ms)"
    )


def run_backend(backend: str, args: argparse.Namespace) -> None:
    with fresh_database(backend, postgres_url=args.postgres_url, name="mot_bench_pages") as url:
        print(f"== {backend}: mot demo ...", flush=True)
        subprocess.run(
            [MOT, "demo"],
            env=child_environment(MOT_DATABASE_URL=url),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with (
            running_service(url, workers=1) as service,
            httpx.Client(base_url=service.url, timeout=60) as browser,
            httpx.Client(base_url=service.url, headers=AUTH, timeout=60) as api,
        ):
            sign_in(browser)
            groups = requests_to_time(browser)
            timed = [item for group in groups for item in group]
            print(
                f"== {backend}: {args.requests} requests each after {args.warmup} of warm-up, "
                "taking turns",
                flush=True,
            )
            measure(browser, api, timed, requests=args.requests, warmup=args.warmup)
            report(groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    for backend in args.backends.split(","):
        run_backend(backend.strip(), args)


if __name__ == "__main__":
    main()
