"""A client generated from the published description, as a consumer makes one with
openapi-python-client, drives a real `mot serve`: it creates a moment, posts a batch, reads
the weak spots and moves the follow-up that a negative rating opened along its workflow.

The generator must take the whole description: a schema it cannot read is dropped from the
client with a warning, and an operation answering with it is parsed as nothing."""

import importlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.servers import ADMIN_KEY, Served

pytestmark = pytest.mark.slow

GENERATOR = str(Path(sys.executable).with_name("openapi-python-client"))
PACKAGE = "mot_generated_client"
MOMENT = "portal.password-reset"


@pytest.fixture
def served(backend: str, database_url: str, tmp_path: Path) -> Iterator[Served]:
    # The description is the same on both databases, and what each route does on each is
    # tested without a generated client: one slow run is enough.
    if backend != "sqlite":
        pytest.skip("the published description does not depend on the database")
    with Served(database_url, tmp_path / "serve.log") as server:
        yield server


def _generate(served: Served, directory: Path) -> str:
    """Generate the client from the served description into `directory`; what the
    generator said."""
    description = directory / "openapi.json"
    description.write_bytes(httpx.get(f"{served.base_url}/openapi.json").content)
    # No formatting afterwards: it would need a formatter on PATH and changes no code.
    config = directory / "generator.yaml"
    config.write_text("post_hooks: []\n")
    result = subprocess.run(
        [
            GENERATOR,
            "generate",
            "--path",
            str(description),
            "--output-path",
            str(directory / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = result.stdout + result.stderr
    assert result.returncode == 0, said
    return said


@pytest.fixture
def generated(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, ModuleType]]:
    """(what the generator said, the generated package), importable for this test only."""
    said = _generate(served, tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield said, importlib.import_module(PACKAGE)
    finally:
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def test_a_generated_client_posts_a_batch_reads_weak_spots_and_moves_a_follow_up(
    served: Served, generated: tuple[str, ModuleType]
) -> None:
    said, package = generated
    assert "Warning" not in said, said
    assert "Unable to" not in said, said
    models = importlib.import_module(f"{PACKAGE}.models")
    with package.AuthenticatedClient(base_url=served.base_url, token=ADMIN_KEY) as client:
        created = _api("moments.create_moment").sync_detailed(
            client=client,
            body=models.MomentCreate(
                key=MOMENT, name="Password reset", channel=models.Channel("portal")
            ),
        )
        assert created.status_code == 201, created.content
        assert isinstance(created.parsed, models.MomentRead)

        now = datetime.now(UTC)
        ratings = [("csat5", 1), ("csat5", 5), ("nps11", 9)]
        batch = models.TouchpointBatch(
            touchpoints=[
                models.TouchpointCreate(
                    moment=MOMENT,
                    id=f"generated-{index}",
                    channel=models.Channel("portal"),
                    occurred_at=now - timedelta(hours=index + 1),
                    client_ref=f"c-{index}",
                    team="web",
                    rating=_rating(models, scale, value),
                )
                for index, (scale, value) in enumerate(ratings)
            ]
        )
        posted = _api("touchpoints.create_touchpoints").sync(client=client, body=batch)
        assert isinstance(posted, models.BatchResult), posted
        assert (posted.accepted, posted.rejected) == (3, 0)

        ranking = _api("insights.weak_spots").sync(client=client, min_responses=0)
        assert isinstance(ranking, models.WeakSpotsRead), ranking
        ranked = [spot.moment for spot in [*ranking.data, *ranking.insufficient_data]]
        assert ranked == [MOMENT]

        page = _api("follow_ups.list_follow_ups").sync(client=client, moment=MOMENT)
        assert isinstance(page, models.FollowUpPage), page
        (opened,) = page.data
        assert (opened.touchpoint, opened.reason, opened.status) == (
            "generated-0",
            models.FollowUpReason("negative_rating"),
            models.FollowUpStatus("open"),
        )
        move = _api("follow_ups.add_follow_up_event")
        for status, extra in [
            ("acknowledged", {"client_message": "We are looking into it."}),
            ("resolved", {"root_cause": "The reset link expired too soon."}),
        ]:
            moved = move.sync(
                client=client,
                follow_up_id=opened.id,
                body=models.FollowUpEventCreate(
                    status=models.FollowUpStatus(status), actor="web lead", **extra
                ),
            )
            assert isinstance(moved, models.FollowUpDetail), moved
            assert moved.status == models.FollowUpStatus(status)
        detail = _api("follow_ups.get_follow_up").sync(client=client, follow_up_id=opened.id)
        assert isinstance(detail, models.FollowUpDetail), detail
        assert detail.root_cause == "The reset link expired too soon."
        assert [event.status for event in detail.events][-2:] == [
            models.FollowUpStatus("acknowledged"),
            models.FollowUpStatus("resolved"),
        ]


def _rating(models: ModuleType, scale: str, value: int) -> Any:
    """The generated rating type of this scale: one per scale, each fixing its `scale`."""
    for name in dir(models):
        if name.startswith("RatingIn"):
            kind = getattr(models, name)
            try:
                return kind.from_dict({"scale": scale, "value": value})
            except ValueError:
                continue
    raise AssertionError(f"no generated rating type takes the scale {scale}")
